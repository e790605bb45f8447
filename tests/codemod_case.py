"""Before/after checks for one fix, in the spirit of LibCST's ``CodemodTest.assertCodemod``, and the small
handlers in the releases' shapes that the fix tests start from.

``run_transformer`` runs one fix's transformer alone over one parse, exactly as the engine runs it
(no other fix pulled in); ``run_fix`` goes through the engine, which adds what a fix needs
(``--select``'s closure). Every expected ``after`` is parsed before it is compared.
"""

from __future__ import annotations

import ast
import textwrap

from codemods.engine import assess, fix_source
from codemods.fixes.registry import BY_NAME
from codemods.settings import Settings
from codemods.status import FixStatus

# The 3.2-3.4 shape, cut down: a Socket.IO client per handler, one tracking dict, main() builds a handler.
SOCKETIO_HANDLER = '''\
import os

import socketio


class ClaudeHookHandler:
    def __init__(self):
        """Set up."""
        self.sio_client = None
        self.sio_connected = False
        self.active_delegations = {}

    def _get_socketio_client(self):
        """Connect."""
        # Need to create new client
        port = int(os.environ.get("CLAUDE_MPM_SOCKETIO_PORT", "8765"))
        self.sio_client = socketio.Client()
        self.sio_client.connect(f"http://localhost:{port}")
        return self.sio_client

    def handle(self):
        """Handle one event."""
        self._get_socketio_client()


def main():
    handler = ClaudeHookHandler()
    handler.handle()
'''

# The 3.0-3.1 shape: nothing tracked, no client.
PLAIN_HANDLER = '''\
import json


class ClaudeHookHandler:
    def __init__(self):
        self.event = None

    def handle(self):
        print(json.dumps({"action": "continue"}))


def main():
    """Entry point."""
    handler = ClaudeHookHandler()
    handler.handle()
'''


def edited(text: str, *edits: tuple[str, str]) -> str:
    """``text`` with each ``(old, new)`` made, each ``old`` found exactly once: an edit that stops matching
    fails here instead of silently changing nothing."""
    for old, new in edits:
        found = text.count(old)
        assert found == 1, f"{old!r} occurs {found} times in the text to edit"
        text = text.replace(old, new)
    return text


def run_transformer(fix: str, before: str, settings: Settings = Settings()) -> str:
    """The text after running only ``fix``'s transformer on ``before`` (dedented), with the plan the engine
    would give it; unchanged when the fix has nothing to do."""
    import libcst

    source = textwrap.dedent(before)
    shape, plans = assess(source.encode())
    if plans[fix].status != FixStatus.PENDING:
        return source
    module = libcst.parse_module(source)
    return module.visit(BY_NAME[fix].transformer_class()(plans[fix], settings, module, shape)).code


def run_fix(fix: str, before: str, settings: Settings = Settings()) -> str:
    """The text after running ``fix`` and what it needs on ``before`` (dedented), through the real engine."""
    outcome = fix_source(textwrap.dedent(before).encode(), select=(fix,), settings=settings)
    return outcome.source.decode()


def assert_codemod(fix: str, before: str, after: str, settings: Settings = Settings()) -> None:
    """Running ``fix``'s transformer alone on ``before`` gives exactly ``after``, which parses, through the
    engine too; running it again changes nothing."""
    expected = textwrap.dedent(after)
    ast.parse(expected)
    actual = run_transformer(fix, before, settings)
    assert actual == expected, "\n" + actual
    assert run_transformer(fix, actual, settings) == actual, "a second run changed the file"
    if not BY_NAME[fix].requires:  # the engine adds nothing else: it must agree
        assert run_fix(fix, before, settings) == expected


def assert_noop(fix: str, source: str) -> None:
    """``fix`` has nothing to do on ``source``: its plan is not pending, and neither its transformer nor the
    engine changes a byte."""
    text = textwrap.dedent(source)
    _, plans = assess(text.encode())
    assert plans[fix].status != FixStatus.PENDING, plans[fix]
    assert run_transformer(fix, text) == text
    if not BY_NAME[fix].requires:  # else the engine may rightly apply what it needs
        assert run_fix(fix, text) == text


def load_namespace(source: str, **injected) -> dict:
    """Execute a patched handler's text as a module namespace (``injected`` replaces its imports)."""
    namespace = {"__name__": "patched_handler"}
    code = compile(textwrap.dedent(source), "patched_handler", "exec")
    if "socketio" in injected:
        code = compile(source.replace("import socketio\n", ""), "patched_handler", "exec")
    namespace.update(injected)
    exec(code, namespace)
    return namespace
