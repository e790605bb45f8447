"""The engine: one parse, the pending fixes in registry order, one code generation, the marks checked;
what it refuses, and the formatting it keeps."""

import ast

import pytest

from codemods.engine import assess, fix_source
from codemods.fixes.plan import UPSTREAM_REASON
from codemods.reading.shape import UnsupportedShape, read_marks
from codemods.status import FixStatus
from tests.codemod_case import PLAIN_HANDLER, SOCKETIO_HANDLER, run_fix


def test_every_injected_fix_leaves_its_mark():
    patched = fix_source(SOCKETIO_HANDLER.encode()).source.decode()
    assert read_marks(patched) == {"connection-pool", "singleton", "limits", "periodic-cleanup", "teardown"}


def test_fixes_with_nothing_to_act_on_say_why():
    _, plans = assess(PLAIN_HANDLER.encode())
    assert plans["singleton"].status == FixStatus.PENDING
    for name in ("connection-pool", "teardown"):
        assert plans[name].status == FixStatus.NOT_APPLICABLE and "Socket.IO client" in plans[name].reason
    for name in ("limits", "periodic-cleanup"):
        assert plans[name].status == FixStatus.NOT_APPLICABLE and "active_delegations" in plans[name].reason


def test_a_partial_patch_of_ours_is_completed_not_mistaken_for_upstream():
    singleton_only = run_fix("singleton", SOCKETIO_HANDLER)
    shape, plans = assess(singleton_only.encode())
    assert not shape.carries_upstream_rework
    assert plans["singleton"].status == FixStatus.PRESENT and plans["connection-pool"].status == FixStatus.PENDING
    completed = fix_source(singleton_only.encode()).source.decode()
    # The same code as a patch in one go; only which fix's mark an added import carries, and so
    # the order of the added imports, may differ.
    assert _code_and_imports(completed) == _code_and_imports(fix_source(SOCKETIO_HANDLER.encode()).source.decode())


def _code_and_imports(source: str):
    tree = ast.parse(source)
    imports = sorted(ast.dump(node) for node in tree.body if isinstance(node, ast.Import))
    tree.body = [node for node in tree.body if not isinstance(node, ast.Import)]
    return ast.dump(tree), imports


def test_upstream_rework_file_is_left_alone():
    upstream = SOCKETIO_HANDLER.replace("\n\ndef main():", "\n\n_global_handler = None\n\n\ndef main():")
    outcome = fix_source(upstream.encode())
    assert outcome.source == upstream.encode() and not outcome.applied
    assert {plan.reason for plan in outcome.plans.values()} == {UPSTREAM_REASON}


ONE_LINE_MAIN = PLAIN_HANDLER.split("def main():")[0] + "def main(): handler = ClaudeHookHandler(); handler.handle()\n"


@pytest.mark.parametrize(
    ("source", "missing"),
    [
        pytest.param("def main():\n    pass\n", "no class ClaudeHookHandler", id="no-handler-class"),
        pytest.param(
            PLAIN_HANDLER.replace("    def handle(self):", "    def other(self):"),
            "no handle() method",
            id="no-handle-method",
        ),
        pytest.param(PLAIN_HANDLER.replace("def main():", "def start():"), "no top-level main()", id="no-main"),
        pytest.param(
            PLAIN_HANDLER.replace("handler = ClaudeHookHandler()", "handler = make()"),
            "main() does not create",
            id="main-builds-no-handler",
        ),
        pytest.param(
            SOCKETIO_HANDLER.replace("port = int(", "where = int(").replace("{port}", "{where}"),
            "sets no `port`",
            id="no-port",
        ),
        pytest.param(
            SOCKETIO_HANDLER.replace("        port = int(", "        if True: port = int("),
            "sets no `port`",
            id="port-inside-an-if",
        ),
        pytest.param(ONE_LINE_MAIN, "main has its whole body on one line", id="one-line-main"),
    ],
)
def test_unknown_shapes_are_refused_with_what_was_missing(source, missing):
    with pytest.raises(UnsupportedShape, match=missing.replace("(", r"\(").replace(")", r"\)")):
        fix_source(source.encode())


def test_crlf_and_tab_indented_handlers_keep_their_style():
    tabbed = SOCKETIO_HANDLER.replace("        ", "\t\t").replace("    ", "\t").replace("\n", "\r\n")
    patched = fix_source(tabbed.encode()).source
    assert patched.count(b"\r\n") == patched.count(b"\n")
    assert not any(line.startswith(b" ") for line in patched.split(b"\r\n") if line.strip())
    compile(patched, "patched", "exec")
