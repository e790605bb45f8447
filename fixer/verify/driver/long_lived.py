"""Run 2: one long-lived process that calls ``main()`` N times, watched from outside.

A call, or the process exit, that hangs is killed at the hang limit and reported; each call's
reply and the sizes of the handler's collections come back on a report file of the child's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from . import in_process, processes
from .boot import driver_command
from .contract import (
    DEFAULT_EVENTS,
    FAILURE_EXAMPLES,
    HANG_LIMIT_SECONDS,
    SETTLE_SECONDS,
    HandlerNames,
    Launch,
    Reply,
    wrapper_environment,
)
from .events import TURN, hook_events, project_folders
from .server import SocketIOServer


@dataclass
class LongLivedRun:
    """One process calling ``main()`` N times against the server, watched from outside."""

    calls: int
    hang_limit: float
    calls_done: int
    hung_call: int | None  # the call that was still running at the hang limit (then killed)
    exited: bool  # the process exited within the hang limit after its last call
    exit_code: int | None  # None when it was killed
    exit_seconds: float | None  # from the last call's return to the process exit
    replies_not_continue: int
    failures: list[str]
    sent: dict[str, int]  # hook_event_name -> calls that returned
    delivered: dict[str, int]
    connections_opened: int
    peak_open: int
    connections_left_open: int
    # name -> {"peak": int, "limit": int|None, "limit_name": the constant that would limit it, None for the
    # git-branch cache, which is bounded by age}
    collections: dict[str, dict] = field(default_factory=dict)
    cleanup_interval: int | None = None  # the handler's CLEANUP_INTERVAL_EVENTS, when it has one
    max_connections: int | None = None  # its connection pool's size, when it has a pool
    channels: dict[str, int] = field(default_factory=dict)  # socketio / http -> events received that way

    def as_json(self) -> dict:
        return asdict(self)


def run_long_lived(
    python: str,
    handler: Path,
    events: int = DEFAULT_EVENTS,
    *,
    hang_limit: float = HANG_LIMIT_SECONDS,
    settle: float = SETTLE_SECONDS,
    progress: Callable[[int, int], None] | None = None,
    launch: Launch | None = None,
    names: HandlerNames,
) -> LongLivedRun:
    """Call ``main()`` ``events`` times in one ``python`` process against a fresh server, and measure it.

    The handler is imported as the wrapper runs it: by path, or as ``launch.module``. The
    process reports each call on a file of its own (its stdout belongs to the handler);
    no report for ``hang_limit`` seconds means the call hung, and the process is killed. ``names``
    says which collections, limits and pool it measures.
    """
    launch = launch or Launch.by_path(python, Path(handler).resolve())  # the process runs in a project folder
    target = ["--module", launch.module] if launch.module else [str(Path(launch.handler or handler).resolve())]
    with project_folders() as cwds, SocketIOServer(launch.port) as server, tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "calls.jsonl"
        report.touch()
        command = driver_command(
            python,
            "--long-lived-child",
            *target,
            "--function",
            launch.function,
            "--reply",
            launch.reply,
            "--events",
            str(events),
            "--report",
            str(report),
            "--cwds",
            os.pathsep.join(cwds),
            "--names",
            json.dumps(names.as_json()),
        )
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=cwds[0],
            env=wrapper_environment(server.port, launch.environment),
            start_new_session=True,
        )
        try:
            lines, finished_at = _watch(process, report, events, hang_limit, progress)
        except BaseException:  # interrupted: the watched process goes first
            processes.kill_group(process)
            process.wait()
            raise
        exited_at = time.monotonic() if process.poll() is not None else None
        if exited_at is None:
            processes.kill_group(process)
        process.wait()
        server.settle(settle)
        exit_code = None if exited_at is None else process.returncode
        return _long_lived_figures(lines, events, hang_limit, finished_at, exited_at, exit_code, server, names)


def _watch(
    process: subprocess.Popen, report: Path, events: int, hang_limit: float, progress: Callable[[int, int], None] | None
) -> tuple[list[dict], float | None]:
    """(the report's lines, when the last call returned) once the process exits or goes quiet for ``hang_limit``."""
    lines: list[dict] = []
    last_news = time.monotonic()
    finished_at: float | None = None
    if progress is not None:
        progress(0, events)
    with report.open() as reader:
        unfinished = ""
        while True:
            running = process.poll() is None  # before reading: what it wrote before exiting is read now
            *complete, unfinished = (unfinished + reader.read()).split("\n")
            fresh = [json.loads(line) for line in complete]
            if fresh:
                lines += fresh
                last_news = time.monotonic()
                if progress is not None:
                    progress(sum(1 for line in lines if "call" in line), events)
                if finished_at is None and "done" in lines[-1]:
                    finished_at = time.monotonic()
            if not running or time.monotonic() - last_news > hang_limit:
                break
            time.sleep(0.02)
    return lines, finished_at


def _long_lived_figures(
    lines: list[dict],
    events: int,
    hang_limit: float,
    finished_at: float | None,
    exited_at: float | None,
    exit_code: int | None,
    server: SocketIOServer,
    names: HandlerNames,
) -> LongLivedRun:
    calls = [line for line in lines if "call" in line]
    done: dict = next((line["done"] for line in lines if "done" in line), {})
    failures = [f"call {line['call']} ({line['kind']}): {line['failure']}" for line in calls if line["failure"]]
    failures += [f"import: {line['import_failure']}" for line in lines if "import_failure" in line]
    peaks: dict[str, int] = {}
    for line in calls:
        in_process.raise_to(peaks, line["sizes"])
    limits = done.get("limit_values", {})
    hung_call = len(calls) + 1 if finished_at is None and exited_at is None else None
    if hung_call is not None:
        failures.append(f"call {hung_call}: hung, killed after {hang_limit:g} s")
    exit_seconds = None if finished_at is None or exited_at is None else round(exited_at - finished_at, 3)
    started = len(calls) + (hung_call is not None)  # a hung call's event was handed over too
    return LongLivedRun(
        calls=events,
        hang_limit=hang_limit,
        calls_done=len(calls),
        hung_call=hung_call,
        exited=exit_seconds is not None,
        exit_code=exit_code,
        exit_seconds=exit_seconds,
        replies_not_continue=sum(1 for line in calls if not line["replied"]),
        failures=failures[:FAILURE_EXAMPLES],
        sent=dict(Counter(TURN[index % len(TURN)] for index in range(started))),
        delivered=dict(server.received_by_type()),
        connections_opened=server.opened,
        peak_open=server.peak,
        connections_left_open=server.open_now(),
        collections={
            name: {"peak": peak, "limit": limits.get(name), "limit_name": names.size_limits[name]}
            for name, peak in peaks.items()
        },
        cleanup_interval=done.get("cleanup_interval"),
        max_connections=done.get("max_connections"),
        channels=dict(server.channels),
    )


def long_lived_child(
    handler: Path | None,
    events: int,
    report: Path,
    cwds: list[str],
    names: HandlerNames,
    module_name: str | None = None,
    function: str = "main",
    reply: str = Reply.ACTION.value,
) -> None:
    """The watched process of :func:`run_long_lived`: ``main()`` N times, one report line per call.

    Then it returns, and the interpreter's exit (where a handler kept in a module global is
    torn down) is timed by the watcher.
    """
    with report.open("a") as out:
        try:
            if module_name:
                import importlib

                module = importlib.import_module(module_name)
            else:
                assert handler is not None
                sys.path.insert(0, str(handler.parent))  # as when the file is run as a script
                module = in_process.import_handler(handler)
        except Exception as error:  # the per-process run shows the same failure on every hook
            out.write(json.dumps({"import_failure": repr(error)[:200]}) + "\n")
            out.write(json.dumps({"done": {}}) + "\n")
            return
        seen: dict[str, object] = {}

        def measure(instance) -> None:
            seen["sizes"] = in_process.collection_sizes(instance, names.size_limits)
            seen["limit_values"] = {
                name: in_process.constant(instance, module, limit) for name, limit in names.size_limits.items() if limit
            }
            seen["cleanup_interval"] = in_process.constant(instance, module, names.cleanup_interval)
            pool = getattr(instance, names.pool_attribute, None)
            seen["max_connections"] = getattr(pool, "max_connections", None)

        if hasattr(module, names.handler_class):
            in_process.observe_handle(module, names.handler_class, lambda instance: None, measure)
        for number, event in enumerate(hook_events(events, cwds), start=1):
            seen["sizes"] = {}
            replied, failure = in_process.call_hook(module, event, reply, function, real_stdin=True)
            line = {
                "call": number,
                "kind": event["hook_event_name"],
                "replied": replied,
                "failure": failure,
                "sizes": seen["sizes"],
            }
            out.write(json.dumps(line) + "\n")
            out.flush()
        summary = {key: seen.get(key) for key in ("limit_values", "cleanup_interval", "max_connections")}
        out.write(json.dumps({"done": summary}) + "\n")
