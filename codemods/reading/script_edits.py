"""Where claude-mpm's ``scripts/fix_memory_leaks.py`` edits a pre-fix handler, and whether a file is its output.

Learned by reading that script (claude-mpm 3.9.4's, MIT) and running it on all 39 pre-fix releases:
it works on the text, each edit at a fixed text anchor of the original, and keeps every other byte:

- before the first ``class ClaudeHookHandler:`` it inserts its pool class and the singleton globals;
- every ``self.sio_client = None`` + newline + 8 spaces + ``self.sio_connected = False`` (``__init__``'s,
  and on 3.5+ also the one ``_get_socketio_client()`` ends with) becomes ``self.connection_pool = ...``
  followed by its tracking and limit attributes, indented for ``__init__`` wherever it lands;
- before the first ``def _get_delegation_agent_type(self`` it inserts ``_cleanup_old_entries()``;
- every ``client = self._get_socketio_client()``, also inside ``retry_client = ...`` (3.5+: the cause of
  their "unexpected indent"), becomes two lines, a ``port`` assignment and a ``get_connection(port)``;
- ``main()``'s head, where it is 3.4+'s text, becomes the singleton;
- ``from collections import deque`` gets ``import threading`` after it, when nothing imports threading.

(Its edit of ``handle()`` needs ``if not event:`` in a handler without ``__init__``'s two Socket.IO lines;
no release has both, and a candidate that would need it is refused, never guessed at.)

So a backup is the original a damaged file was made from when the damaged file is exactly that
original with, at each anchor, either nothing changed or what the script puts there: the original of
another release, or a file edited since, differs outside the anchors. Standard library only.
"""

from __future__ import annotations

import ast
import functools
import re
import textwrap
from dataclasses import dataclass
from enum import Enum

from .shape import CLEANUP_METHOD, HANDLER_CLASS, POOL_ATTRIBUTE, POOL_CLASS

SINGLETON_GLOBALS = ("_global_handler", "_handler_lock")
# What the script sets in place of __init__'s Socket.IO lines: its pool, an event counter and four limits.
INIT_ATTRIBUTES = frozenset(
    {
        POOL_ATTRIBUTE,
        "events_processed",
        "last_cleanup",
        "MAX_DELEGATION_TRACKING",
        "MAX_PROMPT_TRACKING",
        "MAX_CACHE_AGE_SECONDS",
        "CLEANUP_INTERVAL_EVENTS",
    }
)
_HANDLER_CLASS = f"class {HANDLER_CLASS}:".encode()
_SOCKETIO_LINES = re.compile(rb"self\.sio_client = None\n {8}self\.sio_connected = False")
_METHOD_AFTER_CLEANUP = b"def _get_delegation_agent_type(self"
_CLIENT_GETTER_CALL = b"client = self._get_socketio_client()"
_DEQUE_IMPORT = b"from collections import deque"
_THREADING_IMPORT = b"\nimport threading"
_MAIN_HEAD_END = b"handler.handle()"
_CLIENT_FROM_POOL = ast.dump(ast.parse(f"client = self.{POOL_ATTRIBUTE}.get_connection(port)").body[0])


class Edit(Enum):
    """One kind of edit the script makes, named after what it puts in."""

    POOL_AND_GLOBALS = "pool class and singleton globals"
    INIT_ATTRIBUTES = "pool and limit attributes"
    CLEANUP_METHOD = "cleanup method"
    CLIENT_FROM_POOL = "client from the pool"
    SINGLETON_MAIN = "singleton main()"
    THREADING_IMPORT = "threading import"


@dataclass(frozen=True)
class Site:
    """A span of the original the script may rewrite (``start == end``: a place where it inserts)."""

    edit: Edit
    start: int
    end: int
    after: bytes = b""  # for main(): the rest of the function, kept, that the new head must fit


def edit_sites(original: bytes) -> list[Site] | None:
    """The anchors of the script's edits in ``original``, in order; None when they overlap (never seen)."""
    sites = []
    handler_class = original.find(_HANDLER_CLASS)
    if handler_class > 0:
        sites.append(Site(Edit.POOL_AND_GLOBALS, handler_class, handler_class))
    sites += [Site(Edit.INIT_ATTRIBUTES, m.start(), m.end()) for m in _SOCKETIO_LINES.finditer(original)]
    method = original.find(_METHOD_AFTER_CLEANUP)
    if method > 0:
        sites.append(Site(Edit.CLEANUP_METHOD, method, method))
    sites += [
        Site(Edit.CLIENT_FROM_POOL, at, at + len(_CLIENT_GETTER_CALL))
        for at in _occurrences(original, _CLIENT_GETTER_CALL)
    ]
    sites += [
        Site(Edit.THREADING_IMPORT, at + len(_DEQUE_IMPORT), at + len(_DEQUE_IMPORT))
        for at in _occurrences(original, _DEQUE_IMPORT)
    ]
    main = _main_site(original)
    if main is not None:
        sites.append(main)
    sites.sort(key=lambda site: (site.start, site.end))
    if any(later.start < earlier.end for earlier, later in zip(sites, sites[1:])):
        return None
    return sites


def _main_site(original: bytes) -> Site | None:
    """``main()`` from ``def main():`` to its first ``handler.handle()``: the head the script may replace."""
    tree = ast.parse(original)
    main = next((node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main"), None)
    if main is None or main.decorator_list:
        return None
    line_starts = [0]
    for line in original.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    start, end = line_starts[main.lineno - 1], line_starts[main.end_lineno or main.lineno]
    head_end = original.find(_MAIN_HEAD_END, start, end)
    if head_end == -1 or not original.startswith(b"def main():", start):
        return None
    head_end += len(_MAIN_HEAD_END)
    return Site(Edit.SINGLETON_MAIN, start, head_end, after=original[head_end:end])


def made_by_the_script(damaged: bytes, original: bytes) -> bool:
    """Whether ``damaged`` is ``original`` with, at each of the script's anchors, the original text or the
    script's; everything else byte for byte (so another release's original, or a file edited since, is not)."""
    sites = edit_sites(original)
    if sites is None:
        return False
    bounds = [0, *(edge for site in sites for edge in (site.start, site.end)), len(original)]
    kept = [original[bounds[i] : bounds[i + 1]] for i in range(0, len(bounds), 2)]
    if not damaged.startswith(kept[0]):
        return False

    @functools.cache  # each (site, position) is tried once, whatever the file repeats
    def rest_matches(index: int, position: int) -> bool:
        """From ``position``: site ``index``'s text, then the kept text after it, and so on to the end."""
        if index == len(sites):
            return position == len(damaged)
        following = kept[index + 1]
        if index + 1 == len(sites):  # the last kept text ends the file
            ends = [len(damaged) - len(following)] if damaged.endswith(following) else []
        elif following:
            ends = _occurrences(damaged, following, position)
        else:
            return False  # two anchors side by side: no release has that, so no guessing where one ends
        site = sites[index]
        return any(
            end >= position
            and _is_scripts_text(site, damaged, position, end, original[site.start : site.end])
            and rest_matches(index + 1, end + len(following))
            for end in ends
        )

    return rest_matches(0, len(kept[0]))


def _occurrences(data: bytes, part: bytes, start: int = 0) -> list[int]:
    found, at = [], data.find(part, start)
    while at != -1:
        found.append(at)
        at = data.find(part, at + 1)
    return found


def _is_scripts_text(site: Site, damaged: bytes, start: int, end: int, original_text: bytes) -> bool:
    """What ``damaged`` holds at ``site`` is the original's text there (the script skipped it) or the script's."""
    text = damaged[start:end]
    if text == original_text:
        return True
    line_start = damaged.rfind(b"\n", 0, start) + 1
    try:
        before, inserted = damaged[line_start:start].decode("utf-8"), text.decode("utf-8")
        return _CHECKS[site.edit](before, inserted, site.after.decode("utf-8"))
    except (UnicodeDecodeError, SyntaxError, ValueError, RecursionError):
        return False


def _statements(code: str) -> list[ast.stmt]:
    return ast.parse(textwrap.dedent(code)).body


def _pool_and_globals(before: str, text: str, after: str) -> bool:
    """At column 0: the pool class and the two globals, once each, and nothing else (read line by line, so
    that a file broken inside them, which has no tree, is still recognised)."""
    starts = [line for line in text.splitlines() if line[:1] not in ("", " ", "\t", "#")]
    expected = [f"class {POOL_CLASS}", *(f"{name} =" for name in SINGLETON_GLOBALS)]
    return not before and len(starts) == len(expected) and all(map(str.startswith, starts, expected))


def _init_attributes(before: str, text: str, after: str) -> bool:
    """``self.connection_pool = ...`` first, then only the script's counter and limit attributes."""
    statements = _statements(before + text) if not before.strip() else []
    targets = [_self_attribute(node) for node in statements]
    return bool(targets) and targets[0] == POOL_ATTRIBUTE and all(target in INIT_ATTRIBUTES for target in targets)


def _self_attribute(node: ast.stmt) -> str | None:
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
            return target.attr
    return None


def _cleanup_method(before: str, text: str, after: str) -> bool:
    """One method, the script's cleanup."""
    statements = _statements(text)
    only = statements[0] if len(statements) == 1 else None
    return isinstance(only, ast.FunctionDef) and only.name == CLEANUP_METHOD


def _client_from_pool(before: str, text: str, after: str) -> bool:
    """Two lines: ``...port = int(...)`` (continuing whatever name preceded the call), then the pooled client."""
    lines = (before + text).split("\n")
    if len(lines) != 2:
        return False
    (port,) = ast.parse(lines[0].strip()).body
    (client,) = ast.parse(lines[1].strip()).body
    return (
        isinstance(port, ast.Assign)
        and len(port.targets) == 1
        and isinstance(port.targets[0], ast.Name)
        and port.targets[0].id.endswith("port")
        and isinstance(port.value, ast.Call)
        and getattr(port.value.func, "id", None) == "int"
        and ast.dump(client) == _CLIENT_FROM_POOL
    )


def _singleton_main(before: str, text: str, after: str) -> bool:
    """A new head that, with the rest of the original ``main()``, makes a ``main()`` that uses the globals."""
    if before or not text.startswith("def main():") or not text.endswith(_MAIN_HEAD_END.decode()):
        return False
    (main,) = ast.parse(text + after).body
    declares = any(isinstance(node, ast.Global) and SINGLETON_GLOBALS[0] in node.names for node in ast.walk(main))
    locks = any(
        getattr(item.context_expr, "id", None) == SINGLETON_GLOBALS[1]
        for node in ast.walk(main)
        if isinstance(node, ast.With)
        for item in node.items
    )
    return isinstance(main, ast.FunctionDef) and main.name == "main" and declares and locks


def _threading_import(before: str, text: str, after: str) -> bool:
    return text == _THREADING_IMPORT.decode()


_CHECKS = {
    Edit.POOL_AND_GLOBALS: _pool_and_globals,
    Edit.INIT_ATTRIBUTES: _init_attributes,
    Edit.CLEANUP_METHOD: _cleanup_method,
    Edit.CLIENT_FROM_POOL: _client_from_pool,
    Edit.SINGLETON_MAIN: _singleton_main,
    Edit.THREADING_IMPORT: _threading_import,
}
