"""Property tests: handlers of every 3.x-like shape keep the safety invariants.

A small generator writes hook handlers in the style of claude-mpm 3.x (its own code, not claude-mpm's):
which tracked collections exist, whether a Socket.IO client getter and ``__del__`` exist, member order,
indentation, blank lines and comments, line endings, BOM, which imports are there. Whatever the shape,
the file edge must keep its promises.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codemods.engine import fix_source
from codemods.fixes.registry import FIX_NAMES, resolve_selection
from codemods.settings import Settings
from fixer.patch.pipeline import apply_file, check_file, restore_file
from tests.helpers import (
    BOM,
    assert_no_duplicates,
    assert_preserved,
    code_lines,
    line_endings,
    make_handler,
    new_undefined_names,
)
from tests.helpers_pyflakes import undefined_names

COLLECTIONS = ("active_delegations", "delegation_requests", "pending_prompts", "git_cache")
PROPERTY_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class HandlerSpec:
    collections: tuple[str, ...]
    client: str | None  # None, "attribute" (self.sio_client) or "local" (a local client)
    getter: str
    has_del: bool
    member_order: tuple[int, ...]  # a permutation of the members' indexes
    indent: str
    blank_lines: int
    comments: bool
    newline: str
    bom: bool
    import_time: bool
    import_threading: bool
    docstrings: bool
    final_newline: bool


@st.composite
def handler_specs(draw) -> HandlerSpec:
    collections = tuple(c for c in COLLECTIONS if c in draw(st.sets(st.sampled_from(COLLECTIONS))))
    client = draw(st.sampled_from([None, "attribute", "local"]))
    has_del = draw(st.booleans())
    members = 3 + bool(collections) + bool(client) + has_del  # __init__, handle, _status, ...
    return HandlerSpec(
        collections=collections,
        client=client,
        getter=draw(st.sampled_from(["_get_socketio_client", "_dashboard_client", "_client"])),
        has_del=has_del,
        member_order=tuple(draw(st.permutations(range(members)))),
        indent=draw(st.sampled_from(["    ", "  ", "\t", "   ", "        "])),
        blank_lines=draw(st.integers(0, 3)),
        comments=draw(st.booleans()),
        newline=draw(st.sampled_from(["\n", "\r\n"])),
        bom=draw(st.booleans()),
        import_time=draw(st.booleans()),
        import_threading=draw(st.booleans()),
        docstrings=draw(st.booleans()),
        final_newline=draw(st.booleans()),
    )


# A member is (name, body lines); body lines are (depth, text) with depth counted inside the method.
Member = tuple[str, list[tuple[int, str]]]


def _members(spec: HandlerSpec) -> list[Member]:
    init = [(0, "self.started = None")]
    for name in spec.collections:
        if name == "git_cache":
            init += [(0, "self._git_branch_cache = {}"), (0, "self._git_branch_cache_time = {}")]
        else:
            init.append((0, f"self.{name} = {{}}  # key -> event" if spec.comments else f"self.{name} = {{}}"))
    if spec.client == "attribute":
        init += [(0, "self.sio_client = None"), (0, "self.sio_connected = False")]

    handle = [(0, 'event = json.loads(sys.stdin.read() or "{}")')]
    if spec.collections:
        handle.append((0, "self._remember(event)"))
    if spec.client:
        handle += [(0, f"client = self.{spec.getter}()"), (0, "if client is not None:")]
        handle.append((1, 'client.emit("hook", event)'))
    handle.append((0, 'print(json.dumps({"action": "continue"}))'))

    members = [("__init__", init), ("handle", handle), ("_status", [(0, 'return {"ok": True}')])]
    if spec.collections:
        remember = [(0, 'key = event.get("session_id", "")')]
        for name in spec.collections:
            if name == "git_cache":
                stamp = "time.time()" if spec.import_time else "0"
                remember.append((0, 'self._git_branch_cache[key] = "main"'))
                remember.append((0, f"self._git_branch_cache_time[key] = {stamp}"))
            else:
                remember.append((0, f"self.{name}[key] = event"))
        members.append(("_remember", remember))
    if spec.client:
        getter = [(0, 'port = int(os.environ.get("HOOK_PORT", "8765"))')]
        if spec.client == "attribute":
            getter += [
                (0, "if self.sio_client is not None and self.sio_connected:"),
                (1, "return self.sio_client"),
                (0, "self.sio_client = socketio.Client(reconnection=False)"),
                (0, 'self.sio_client.connect(f"http://localhost:{port}")'),
                (0, "self.sio_connected = True"),
                (0, "return self.sio_client"),
            ]
        else:
            getter += [
                (0, "client = socketio.Client()"),
                (0, 'client.connect(f"http://localhost:{port}")'),
                (0, "return client"),
            ]
        members.append((spec.getter, getter))
    if spec.has_del:
        if spec.client == "attribute":
            body = [(0, 'if getattr(self, "sio_client", None) is not None:'), (1, "self.sio_client.disconnect()")]
        else:
            body = [(0, "self.started = None")]
        members.append(("__del__", body))
    return members


def render(spec: HandlerSpec) -> bytes:
    """The handler's source text for ``spec``."""
    lines: list[tuple[int, str]] = []  # (indent level, text); text "" is a blank line

    def blank(count: int) -> None:
        lines.extend([(0, "")] * count)

    if spec.docstrings:
        lines.append((0, '"""A Claude Code hook handler (generated)."""'))
        blank(1)
    imports = ["json", "os", "sys"] + ["threading"] * spec.import_threading + ["time"] * spec.import_time
    lines += [(0, f"import {name}") for name in sorted(imports)]
    if spec.client:
        blank(1)
        lines += [(0, "try:"), (1, "import socketio"), (0, "except ImportError:"), (1, "socketio = None")]
    blank(2)
    lines.append((0, "class ClaudeHookHandler:"))
    if spec.docstrings:
        lines.append((1, '"""Handles one hook event."""'))
    members = _members(spec)
    for position, index in enumerate(spec.member_order):
        name, body = members[index]
        if position or spec.docstrings:
            blank(spec.blank_lines if position else 1)
        if spec.comments:
            lines.append((1, f"# {name}: part of the handler"))
        lines.append((1, f"def {name}(self{', event' if name == '_remember' else ''}):"))
        if spec.docstrings:
            lines.append((2, f'"""The {name.strip("_")} step."""'))
        if spec.comments:
            lines.append((2, "# the body follows"))
        lines += [(2 + depth, text) for depth, text in body]
    blank(2)
    lines += [(0, "def main():"), (1, "handler = ClaudeHookHandler()"), (1, "handler.handle()")]
    blank(2)
    lines += [(0, 'if __name__ == "__main__":'), (1, "main()")]
    text = spec.newline.join(spec.indent * level + content if content else "" for level, content in lines)
    return (BOM if spec.bom else b"") + (text + spec.newline * spec.final_newline).encode()


def _selections():
    return st.sets(st.sampled_from(FIX_NAMES), min_size=1).map(lambda names: resolve_selection(names)[0])


@PROPERTY_SETTINGS
@given(spec=handler_specs())
def test_apply_keeps_every_invariant(spec):
    """Output compiles, adds no undefined name, keeps the original's lines; twice is once; backup is the
    input; check agrees; restore is the identity."""
    source = render(spec)
    compile(source, "generated", "exec", dont_inherit=True)
    assert not undefined_names(source), "the generator itself must be clean"
    with tempfile.TemporaryDirectory() as folder:
        path = make_handler(Path(folder), source)

        first = apply_file(path, FIX_NAMES, Settings())
        assert first.status == "patched", first.message
        once = path.read_bytes()
        assert once == fix_source(source).source
        compile(once, str(path), "exec", dont_inherit=True)
        assert not new_undefined_names(source, once)
        assert line_endings(once) == line_endings(source) or not line_endings(source)
        assert once.startswith(BOM) == spec.bom
        assert_preserved(source, once)
        assert_no_duplicates(once)
        assert check_file(path, FIX_NAMES).status == "ok"

        second = apply_file(path, FIX_NAMES, Settings())
        assert second.status == "already-fixed" and path.read_bytes() == once
        assert path.with_name("hook_handler.py.backup").read_bytes() == source

        restored = restore_file(path)
        assert restored.status == "restored", restored.message
        assert path.read_bytes() == source
        assert path.with_name("hook_handler.py.backup").read_bytes() == source


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=handler_specs(), first=_selections())
def test_partial_then_full_equals_full(spec, first):
    """Any ``--select`` first, then everything: the same code as one full run, nothing twice."""
    source = render(spec)
    partial = fix_source(source, first).source
    completed = fix_source(partial).source
    full = fix_source(source).source

    assert code_lines(completed) == code_lines(full)
    assert_no_duplicates(completed)
    assert not new_undefined_names(source, completed)
    assert fix_source(completed).source == completed
