"""The driver's command line, inside the install's interpreter: the runs, printed as one JSON object.

::

    PYTHON -c BOOT DRIVER_FOLDER HOOK_HANDLER_PY --names JSON [--events N] [--hang-limit S] [--launch JSON] [--netns]

(:func:`.boot.driver_command` spells it.) Progress lines go to stderr, behind ``PROGRESS_PREFIX``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import sys
from pathlib import Path
from typing import Callable

from .contract import (
    DEFAULT_EVENTS,
    HANG_LIMIT_SECONDS,
    PROGRESS_PREFIX,
    WEDGED_EVENTS,
    Condition,
    HandlerNames,
    Launch,
    Reply,
)
from .events import claude_code_on_path
from .long_lived import long_lived_child, run_long_lived
from .per_process import run_per_process
from .server import loopback_up

# The server needs python-socketio and aiohttp; the handler's client needs requests as well, for the
# long-polling handshake every connection starts with (claude-mpm depends on all of them).
REQUIRED_MODULES = {
    "socketio": "python-socketio",
    "engineio": "python-engineio",
    "aiohttp": "aiohttp",
    "requests": "requests",
}


def missing_packages() -> list[str]:
    """The distributions the server and the handler's client need that this interpreter lacks."""
    return [package for module, package in REQUIRED_MODULES.items() if importlib.util.find_spec(module) is None]


def transport() -> str:
    """The Socket.IO transport the handler's client ends up on: websocket-client makes it upgrade."""
    return "websocket" if importlib.util.find_spec("websocket") is not None else "polling"


def package_versions() -> dict[str, str | None]:
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in ("claude-mpm", "python-socketio", "python-engineio", "aiohttp", "websocket-client"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def verify(
    handler: Path,
    events: int,
    hang_limit: float = HANG_LIMIT_SECONDS,
    progress: Callable[[str, int, int], None] | None = None,
    launch: Launch | None = None,
    *,
    names: HandlerNames,
) -> dict:
    """The runs on ``handler`` in this interpreter: the figures ``fix-memory-leaks verify`` judges.

    Per process with the server up and with none, a few hooks against a wedged server (their
    time is reported), and the long-lived run where the hook is Python (not for a shell hook).
    """
    python = sys.executable
    launch = launch or Launch.by_path(python, Path(handler).resolve())

    def stage(name: str) -> Callable[[int, int], None] | None:
        return None if progress is None else (lambda done, total: progress(name, done, total))

    with claude_code_on_path() as claude_code:
        figures = _runs(python, handler, events, hang_limit, stage, launch, names)
    return {
        "python": python,
        "python_version": ".".join(map(str, sys.version_info[:3])),
        "packages": package_versions(),
        "transport": transport(),
        "events": events,
        "hang_limit": hang_limit,
        "claude_code": claude_code,
        **figures,
    }


def _runs(
    python: str, handler: Path, events: int, hang_limit: float, stage, launch: Launch, names: HandlerNames
) -> dict:
    per_process = {
        condition.value: run_per_process(
            python,
            handler,
            count,
            condition,
            hang_limit=hang_limit,
            progress=stage(f"per process, {condition.words}"),
            launch=launch,
        ).as_json()
        for condition, count in (
            (Condition.SERVER_UP, events),
            (Condition.NO_SERVER, events),
            (Condition.WEDGED, min(events, WEDGED_EVENTS)),
        )
    }
    long_lived = None
    if launch.module or launch.handler:
        long_lived = run_long_lived(
            python, handler, events, hang_limit=hang_limit, progress=stage("long-lived"), launch=launch, names=names
        ).as_json()
    return {"per_process": per_process, "long_lived": long_lived}


def _print_progress(stage: str, done: int, total: int) -> None:
    print(PROGRESS_PREFIX + json.dumps({"stage": stage, "done": done, "total": total}), file=sys.stderr, flush=True)


def _stop(signum, frame) -> None:
    """verify stopping the driver (SIGTERM) unwinds it as Ctrl-C does: each run kills its hooks on the way out."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a claude-mpm hook handler for real and print figures as JSON.")
    parser.add_argument("handler", type=Path, nargs="?")
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--hang-limit", type=float, default=HANG_LIMIT_SECONDS)
    parser.add_argument("--launch", type=Launch.from_json, help="how the wrapper runs the hook (JSON of Launch)")
    parser.add_argument("--names", type=HandlerNames.from_json, required=True, help="what to measure (JSON)")
    parser.add_argument("--netns", action="store_true", help="in a fresh network namespace: bring up loopback")
    parser.add_argument("--long-lived-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--module", help=argparse.SUPPRESS)
    parser.add_argument("--function", default="main", help=argparse.SUPPRESS)
    parser.add_argument("--reply", default=Reply.ACTION.value, help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cwds", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.long_lived_child:
        cwds = args.cwds.split(os.pathsep)
        long_lived_child(
            args.handler, args.events, args.report, cwds, args.names, args.module, args.function, args.reply
        )
        return 0
    missing = missing_packages()
    if missing:
        print(json.dumps({"error": f"missing in {sys.executable}: {', '.join(missing)}", "missing": missing}))
        return 2
    if args.netns:
        loopback_up()
    signal.signal(signal.SIGTERM, _stop)
    document = verify(args.handler, args.events, args.hang_limit, _print_progress, args.launch, names=args.names)
    print(json.dumps(document))
    return 0
