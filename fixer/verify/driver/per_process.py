"""Run 1: one hook process per event, as the release's wrapper runs it, under one server condition."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from . import processes
from .contract import (
    DEFAULT_EVENTS,
    FAILURE_EXAMPLES,
    HANG_LIMIT_SECONDS,
    SETTLE_SECONDS,
    Condition,
    Launch,
    replies_continue,
    wrapper_environment,
)
from .events import hook_events, project_folders
from .server import serving


@dataclass
class PerProcessRun:
    """N hook processes, one after another, under one server condition.

    Server figures (``delivered``, connections) are ``None`` when no server counts them
    (no server listening, or a wedged one). A hung process counts the hang limit as its time.
    """

    condition: Condition
    hang_limit: float
    sent: dict[str, int]  # hook_event_name -> processes
    hook_seconds: list[float]  # wall time of each process, start to exit
    hung: int  # processes killed at the hang limit
    replies_not_continue: int
    failures: list[str]  # the first few, one line each
    delivered: dict[str, int] | None = None  # event type -> events the server received
    connections_opened: int | None = None
    connections_left_open: int | None = None  # still open at the server after the settle time
    exit_errors: int = 0  # processes that ended with an error (the wrapper then replies continue itself)
    channels: dict[str, int] | None = None  # socketio / http -> events received that way
    errors_reported: list[str] = field(default_factory=list)  # distinct error lines the hooks wrote on stderr
    not_run: int = 0  # hooks not started after one hung: it fails the run, and waiting out the rest shows nothing more

    def as_json(self) -> dict:
        figures = asdict(self)
        figures["hook_seconds_median"] = statistics.median(self.hook_seconds) if self.hook_seconds else None
        figures["hook_seconds_max"] = max(self.hook_seconds, default=None)
        return figures


def run_per_process(
    python: str,
    handler: Path,
    events: int = DEFAULT_EVENTS,
    condition: Condition = Condition.SERVER_UP,
    *,
    hang_limit: float = HANG_LIMIT_SECONDS,
    settle: float = SETTLE_SECONDS,
    progress: Callable[[int, int], None] | None = None,
    launch: Launch | None = None,
) -> PerProcessRun:
    """Run the hook once per hook event, as the release's wrapper does (``launch``; by default
    ``python handler``, as 3.x's ``hook_wrapper.sh``), and measure it; the run stops at the first hook that
    hangs."""
    launch = launch or Launch.by_path(python, Path(handler).resolve())  # each hook runs in its event's folder
    condition = Condition(condition)
    sent: Counter = Counter()
    seconds: list[float] = []
    failures: list[str] = []
    hung = not_continue = exit_errors = 0
    errors_reported: list[str] = []
    with project_folders() as cwds, serving(condition, launch.port) as (port, server):
        environment = wrapper_environment(port, launch.environment)
        if progress is not None:
            progress(0, events)
        for done, event in enumerate(hook_events(events, cwds), start=1):
            kind = event["hook_event_name"]
            sent[kind] += 1
            elapsed, returncode, stdout, stderr = processes.run_hook(launch.command, event, environment, hang_limit)
            seconds.append(elapsed)
            replied = replies_continue(stdout, launch.reply)
            failure = None
            if returncode is None:
                hung += 1
                failure = f"hung, killed after {hang_limit:g} s"
            elif returncode != 0:
                exit_errors += 1
                failure = f"exit {returncode}: {processes.last_line(stderr) or repr(stdout[:120])}"
            elif not replied:
                failure = f"exit {returncode}, no continue reply: {processes.last_line(stderr) or repr(stdout[:120])}"
            not_continue += not replied
            processes.collect_errors(errors_reported, stderr)
            if failure is not None and len(failures) < FAILURE_EXAMPLES:
                failures.append(f"hook {done} ({kind}): {failure}")
            if progress is not None:
                progress(done, events)
            if returncode is None:
                break
        run = PerProcessRun(
            condition,
            hang_limit,
            dict(sent),
            seconds,
            hung,
            not_continue,
            failures,
            exit_errors=exit_errors,
            errors_reported=errors_reported,
            not_run=events - len(seconds),
        )
        if server is not None:
            server.settle(settle)
            run.delivered = dict(server.received_by_type())
            run.connections_opened = server.opened
            run.connections_left_open = server.open_now()
            run.channels = dict(server.channels)
    return run
