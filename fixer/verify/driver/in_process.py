"""Calling the handler inside this process: imported fresh, ``main()`` fed an event, its instance observed.

The long-lived run (and the in-process soak) use this to see what one process that keeps the
handler sees: replies, collection sizes, and the limits the handler carries.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import itertools
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable

from .contract import Reply, replies_continue
from .events import claude_code_json

_module_ids = itertools.count()


def import_handler(path: Path) -> ModuleType:
    """Import the handler file as a fresh module (unique name, not put in ``sys.modules``).

    3.4.x handlers add a folder relative to their own file to ``sys.path``, which is undone
    afterwards.
    """
    spec = importlib.util.spec_from_file_location(f"verified_hook_handler_{next(_module_ids)}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: not importable as a Python module")
    module = importlib.util.module_from_spec(spec)
    saved_path = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved_path
    return module


def call_hook(
    module: ModuleType, event: dict, reply: str = Reply.ACTION.value, function: str = "main", real_stdin: bool = False
) -> tuple[bool, str | None]:
    """One hook call as Claude Code makes it: did it reply "continue", and why it failed, if it did.

    With ``real_stdin`` the event is on file descriptor 0 (a pipe), for handlers that ``select()``
    on stdin before reading it (4.1 and later); otherwise ``sys.stdin`` is a string buffer.
    """
    stdout, saved_stdin = io.StringIO(), sys.stdin
    saved_descriptor = os.dup(0) if real_stdin else None
    if real_stdin:
        reading, writing = os.pipe()
        os.write(writing, claude_code_json(event).encode())
        os.close(writing)
        os.dup2(reading, 0)
        os.close(reading)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115  # closed by the restore below
    else:
        sys.stdin = io.StringIO(claude_code_json(event))
    failure = None
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
            getattr(module, function)()
    except SystemExit as exit_:  # some handlers end with sys.exit(0)
        if exit_.code not in (None, 0):
            failure = f"exit {exit_.code}"
    except Exception as error:
        failure = f"raised {error!r}"
    finally:
        sys.stdin.close()
        sys.stdin = saved_stdin
        if saved_descriptor is not None:
            os.dup2(saved_descriptor, 0)
            os.close(saved_descriptor)
    replied = replies_continue(stdout.getvalue(), reply)
    if failure is None and not replied:
        failure = f"no continue reply in {stdout.getvalue()[:200]!r}"
    return replied, failure


def observe_handle(
    module: ModuleType, class_name: str, before: Callable[[object], None], after: Callable[[object], None]
) -> None:
    """Make ``main()`` build an instrumented handler: the same class (``class_name``), its ``handle()`` wrapped.

    The callbacks see the handler but must not keep it: an unpatched handler is meant to
    die (and disconnect in ``__del__``) at the end of its call.
    """
    base = getattr(module, class_name)

    def handle(self):
        before(self)
        try:
            return base.handle(self)
        finally:
            after(self)

    setattr(module, class_name, type(f"Observed{base.__name__}", (base,), {"handle": handle}))


def collection_sizes(handler, names) -> dict[str, int]:
    """Sizes of the named collections this handler has (dicts only)."""
    return {name: len(value) for name in names if isinstance(value := getattr(handler, name, None), dict)}


def raise_to(peaks: dict[str, int], sizes: dict[str, int]) -> None:
    """Keep in ``peaks`` the largest size seen of each collection."""
    for name, size in sizes.items():
        peaks[name] = max(peaks.get(name, 0), size)


def constant(handler, module: ModuleType, name: str) -> int | None:
    """A limit as the handler sees it: an attribute (claude-mpm 3.9.4+) or a module constant (ours)."""
    value = getattr(handler, name, getattr(module, name, None))
    return value if isinstance(value, int) else None
