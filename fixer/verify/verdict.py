"""``fix-memory-leaks verify``: run the user's own handler for real, and judge it by the figures.

A compile check says the patch is Python; only running the handler the way claude-mpm runs
it shows that it delivers its events, closes its connections, keeps its collections bounded
and never holds up Claude Code. The measuring happens in the install's interpreter (see
``verify_driver``, launched as a script there); this side finds the targets, reads their
layout, judges the figures (a pure function) and reports. It changes nothing on disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

from codemods.settings import Settings
from codemods.shape import UnsupportedShape, inspect

from .verify_driver import DEFAULT_EVENTS, HANG_LIMIT_SECONDS, NO_SERVER, PROGRESS_PREFIX, SERVER_UP, SETTLE_SECONDS

DRIVER = Path(__file__).with_name("verify_driver.py")
PASS, FAIL, ERROR = "pass", "fail", "error"
# The claude_event each kind of hook event makes the handler emit, in every Socket.IO layout.
EMITS = {
    "UserPromptSubmit": "hook.user_prompt",
    "PreToolUse": "hook.pre_tool",
    "PostToolUse": "hook.post_tool",
    "SubagentStop": "hook.subagent_stop",
    "Stop": "hook.stop",
}
# 3.5 and later also announce each Task delegation.
SUBAGENT_START = "hook.subagent_start"
SUBAGENT_START_MARK = b"'subagent_start'"
CONDITION_WORDS = {SERVER_UP: "with the server up", NO_SERVER: "with no server listening"}
RUN_LABELS = {SERVER_UP: "hooks, server up", NO_SERVER: "hooks, no server"}


class VerifyError(Exception):
    """The handler could not be measured: not a handler, missing packages, a driver that failed."""


@dataclass
class Verification:
    """The verdict on one handler, with the figures it rests on (the driver's JSON, judged)."""

    path: str
    status: str
    reasons: list[str] = field(default_factory=list)  # why it fails, one line each
    notes: list[str] = field(default_factory=list)  # what was not judged, and why
    layout: str = ""
    message: str = ""  # why it could not be verified (status error)
    figures: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        figures = self.figures
        return {
            "path": self.path,
            "status": self.status,
            "reasons": self.reasons,
            "notes": self.notes,
            "layout": self.layout,
            "message": self.message,
            **{
                key: figures.get(key)
                for key in ("python", "python_version", "packages", "transport", "events", "hang_limit")
            },
            "per_process": figures.get("per_process", {}),
            "long_lived": figures.get("long_lived", {}),
        }


# -- the verdict (pure) -----------------------------------------------------------------------


def expected_deliveries(source: bytes, sent: dict[str, int]) -> dict[str, int]:
    """The ``claude_event`` types (and counts) the server should receive for the hook events ``sent``."""
    expected: dict[str, int] = {}
    for kind, count in sent.items():
        if kind in EMITS:
            expected[EMITS[kind]] = expected.get(EMITS[kind], 0) + count
    if SUBAGENT_START_MARK in source and sent.get("PreToolUse"):
        expected[SUBAGENT_START] = sent["PreToolUse"]
    return expected


def add_expected(figures: dict, source: bytes) -> dict:
    """Give each run in ``figures`` (in place) the deliveries the handler ``source`` should have made."""
    runs = [*figures["per_process"].values(), figures["long_lived"]]
    for run in runs:
        run["expected"] = None if run["delivered"] is None else expected_deliveries(source, run["sent"])
    return figures


def judge(
    figures: dict, has_socketio_client: bool, max_connections: int = Settings().max_connections
) -> tuple[list[str], list[str]]:
    """(reasons to fail, notes) for the driver's figures, with their ``expected`` deliveries added.

    Pass means: no hook hung, every reply was ``continue``, every event arrived, no
    connection was left open, at most ``max_connections`` (the handler's own pool size when it
    has one) were open at once in the long-lived run, and every tracked collection stayed
    within its limit plus one cleanup interval.
    """
    reasons: list[str] = []
    notes: list[str] = []
    for condition, run in figures["per_process"].items():
        hooks = len(run["hook_seconds"])
        words = CONDITION_WORDS.get(condition, condition)
        if run["hung"]:
            reasons.append(
                f"per process: {run['hung']} of {_count(hooks, 'hook process')} hung {words} "
                f"(killed after {run['hang_limit']:g} s)"
            )
        if run["replies_not_continue"]:
            reasons.append(
                f"per process: {run['replies_not_continue']} of {_count(hooks, 'hook process')} "
                f"did not reply continue {words}"
            )
        if run["delivered"] is not None and has_socketio_client:
            reasons += _delivery_reasons("per process", run)
            if run["connections_left_open"]:
                reasons.append(
                    f"per process: {run['connections_left_open']} of "
                    f"{_count(run['connections_opened'], 'connection')} left open at the server "
                    f"{SETTLE_SECONDS:g} s after the last hook"
                )
    reasons += _long_lived_reasons(figures["long_lived"], has_socketio_client, max_connections)
    if not has_socketio_client:
        notes.append("no Socket.IO client in this handler: events and connections not applicable")
    unlimited = [
        name
        for name, sizes in figures["long_lived"]["collections"].items()
        if sizes["limit"] is None and sizes["limit_name"]
    ]
    if unlimited:
        notes.append(
            f"long-lived: no size limit on {', '.join(unlimited)} in this handler: peak sizes reported, not judged"
        )
    return reasons, notes


def _long_lived_reasons(run: dict, has_socketio_client: bool, max_connections: int) -> list[str]:
    reasons = []
    calls = run["calls"]
    if run["hung_call"] is not None:
        reasons.append(f"long-lived: call {run['hung_call']} of {calls} hung (killed after {run['hang_limit']:g} s)")
    elif run["calls_done"] < calls:
        reasons.append(
            f"long-lived: the process ended after {run['calls_done']} of {_count(calls, 'call')} "
            f"(exit code {run['exit_code']})"
        )
    elif not run["exited"]:
        reasons.append(f"long-lived: the process did not exit within {run['hang_limit']:g} s of its last call (killed)")
    if run["replies_not_continue"]:
        reasons.append(
            f"long-lived: {run['replies_not_continue']} of {_count(run['calls_done'], 'call')} did not reply continue"
        )
    if has_socketio_client:
        reasons += _delivery_reasons("long-lived", run)
        if run["connections_left_open"]:
            reasons.append(
                f"long-lived: {_count(run['connections_left_open'], 'connection')} left open at the "
                "server after the process ended"
            )
        limit = run["max_connections"] or max_connections  # the handler's own pool size, when it has a pool
        if run["peak_open"] > limit:
            reasons.append(f"long-lived: {_count(run['peak_open'], 'connection')} open at once (at most {limit})")
    interval = run["cleanup_interval"] or 0
    for name, sizes in run["collections"].items():
        if sizes["limit"] is not None and sizes["peak"] > sizes["limit"] + interval:
            reasons.append(
                f"long-lived: {name} grew to {sizes['peak']} entries (limit {sizes['limit']} "
                f"+ one cleanup interval of {interval})"
            )
    return reasons


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "es" if noun.endswith("s") else "s")


def _delivery_reasons(run_name: str, run: dict) -> list[str]:
    expected = run["expected"]
    lost = {
        kind: count - run["delivered"].get(kind, 0)
        for kind, count in expected.items()
        if run["delivered"].get(kind, 0) < count
    }
    if not lost:
        return []
    total = sum(expected.values())
    listed = ", ".join(f"{count} {kind}" for kind, count in lost.items())
    return [f"{run_name}: events lost: {total - sum(lost.values())} of {total} delivered (lost {listed})"]


# -- measuring (IO) ---------------------------------------------------------------------------

Progress = Callable[[str, int, int], None]


def verify_file(
    path: Path, python: str, events: int = DEFAULT_EVENTS, progress: Progress | None = None
) -> Verification:
    """Run the handler at ``path`` in ``python`` (both runs) and judge it; errors become status ``error``."""
    try:
        source = path.read_bytes()
        shape = inspect(source)
    except OSError as error:
        return Verification(str(path), ERROR, message=f"cannot read it: {error.strerror or error}")
    except (SyntaxError, ValueError) as error:
        return Verification(str(path), ERROR, message=f"not valid Python: {error}")
    except UnsupportedShape as error:
        return Verification(str(path), ERROR, message=f"not a claude-mpm hook handler this tool knows: {error}")
    try:
        figures = run_driver(python, path, events, progress)
    except VerifyError as error:
        return Verification(str(path), ERROR, layout=shape.layout, message=str(error))
    add_expected(figures, source)
    reasons, notes = judge(figures, shape.has_socketio_client)
    return Verification(str(path), FAIL if reasons else PASS, reasons, notes, shape.layout, figures=figures)


def run_driver(python: str, handler: Path, events: int, progress: Progress | None = None) -> dict:
    """The driver's figures for ``handler``, measured in ``python``; progress lines go to ``progress``.

    The environment, PYTHONPATH included, is passed through: it is what decides the transport
    (websocket-client importable or not). Bytecode is not written: verify changes nothing.
    """
    command = [python, str(DRIVER), str(os.path.abspath(handler)), "--events", str(events)]
    environment = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
    except OSError as error:
        raise VerifyError(f"cannot run {python}: {error.strerror or error}") from None
    assert process.stdout is not None and process.stderr is not None  # both are pipes
    output, errors = process.stdout, process.stderr
    stdout: list[str] = []
    reader = threading.Thread(target=lambda: stdout.append(output.read()), daemon=True)
    reader.start()
    budget = time_budget(events)
    expired = threading.Event()

    def expire() -> None:  # the driver bounds every hook; this bounds the driver
        expired.set()
        process.kill()

    watchdog = threading.Timer(budget, expire)
    watchdog.start()
    diagnostics: deque = deque(maxlen=5)
    try:
        for line in errors:
            if line.startswith(PROGRESS_PREFIX):
                if progress is not None:
                    step = json.loads(line[len(PROGRESS_PREFIX) :])
                    progress(step["stage"], step["done"], step["total"])
            elif line.strip():
                diagnostics.append(line.strip())
        process.wait()
    finally:
        watchdog.cancel()
    reader.join()
    try:
        figures: dict = json.loads("".join(stdout))
    except ValueError:
        if expired.is_set():
            raise VerifyError(f"the measuring run in {python} did not finish within {budget:g} s") from None
        detail = diagnostics[-1] if diagnostics else f"exit code {process.returncode}, no output"
        raise VerifyError(f"the measuring run failed in {python}: {detail}") from None
    if "error" in figures:
        missing = " ".join(figures.get("missing", []))
        hint = f"; install them with: {python} -m pip install {missing}" if missing else ""
        raise VerifyError(figures["error"] + hint)
    return figures


def time_budget(events: int) -> float:
    """The longest a verification can take: every hook and long-lived call hanging to the limit."""
    return (3 * events + 1) * (HANG_LIMIT_SECONDS + 1) + 3 * SETTLE_SECONDS


def exit_code(verifications: Sequence[Verification]) -> int:
    """0 every file passes, 1 any fails, 2 any could not be verified."""
    statuses = {verification.status for verification in verifications}
    return 2 if ERROR in statuses else 1 if FAIL in statuses else 0


# -- reporting --------------------------------------------------------------------------------


@contextlib.contextmanager
def progress_display(
    stream: TextIO, quiet: bool = False, no_color: bool = False
) -> Iterator[Callable[[Path], Progress | None]]:
    """Yields ``for_file(path)``, the progress callback for one handler's runs.

    On a terminal, a live bar per run; elsewhere (CI logs) a line as each run starts, so a
    two-minute verification is not silent; with ``quiet``, nothing.
    """
    if quiet:
        yield lambda path: None
        return
    if not stream.isatty():

        def for_file(path: Path) -> Progress:
            started = set()

            def report(stage: str, done: int, total: int) -> None:
                if stage not in started:
                    started.add(stage)
                    print(f"verify: {path}: {stage} ({total} events)...", file=stream, flush=True)

            return report

        yield for_file
        return
    from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    from .report import console_for

    with Bar(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console_for(stream, no_color),
        transient=True,
    ) as bar:

        def for_file(path: Path) -> Progress:
            tasks: dict[str, TaskID] = {}

            def report(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(f"{path.name}: {stage}", total=total)
                bar.update(tasks[stage], completed=done)

            return report

        yield for_file


def summary(verifications: Sequence[Verification]) -> dict[str, int]:
    return dict(Counter(verification.status for verification in verifications))


def render_json(verifications: Sequence[Verification], stream: TextIO | None = None) -> None:
    document = {"files": [verification.as_json() for verification in verifications], "summary": summary(verifications)}
    (stream or sys.stdout).write(json.dumps(document, indent=2) + "\n")


def render_text(
    verifications: Sequence[Verification],
    *,
    quiet: bool = False,
    verbose: bool = False,
    no_color: bool = False,
    stream: TextIO | None = None,
) -> None:
    """A table of figures per file, then the verdict with its reasons; on stderr, as the other reports."""
    from rich.text import Text

    from .report import console_for

    console = console_for(stream or sys.stderr, no_color)
    styles = {PASS: "bold green", FAIL: "bold red", ERROR: "bold red"}
    for verification in verifications:
        if verification.status == ERROR:
            console.print(Text(f"error: {verification.path}: {verification.message}", style=styles[ERROR]))
            continue
        if quiet and verification.status == PASS:
            continue
        figures = verification.figures
        line = Text(f"{verification.path}: ")
        line.append(verification.status, style=styles[verification.status])
        line.append(
            f"  [layout {verification.layout}; Python {figures['python_version']}; transport {figures['transport']}]",
            style="dim",
        )
        console.print(line)
        if not quiet:
            console.print(_figures_table(figures))
            console.print(Text("  " + _long_lived_line(figures["long_lived"]), style="dim"))
            for note in verification.notes:
                console.print(Text(f"  note: {note}", style="dim"))
        for reason in verification.reasons:
            console.print(Text(f"  ✗ {reason}", style="red"))
        if verbose:
            for example in _failure_examples(figures):
                console.print(Text(f"    {example}", style="dim"))
    text = ", ".join(f"{count} {status}" for status, count in summary(verifications).items()) or "no files"
    console.print(
        Text(f"verify: {text} (a hook still running after {HANG_LIMIT_SECONDS:g} s counts as hung)", style="bold")
    )


def _figures_table(figures: dict):
    from rich.table import Table

    table = Table(box=None, padding=(0, 1, 0, 1), header_style="bold")  # fits 80 columns (CI logs)
    for header in ("run", "calls", "hung", "med/max s", "delivered", "opened", "peak", "left open"):
        table.add_column(header, justify="left" if header == "run" else "right", no_wrap=True)
    for condition, run in figures["per_process"].items():
        table.add_row(
            RUN_LABELS.get(condition, condition),
            str(len(run["hook_seconds"])),
            str(run["hung"]),
            f"{run['hook_seconds_median']:.2f}/{run['hook_seconds_max']:.2f}",
            _delivered(run),
            _optional(run["connections_opened"]),
            "-",
            _optional(run["connections_left_open"]),
        )
    run = figures["long_lived"]
    hung = run["hung_call"] is not None or (run["calls_done"] == run["calls"] and not run["exited"])
    table.add_row(
        "main() x N",
        f"{run['calls_done']}/{run['calls']}",
        "1" if hung else "0",
        "-",
        _delivered(run),
        str(run["connections_opened"]),
        str(run["peak_open"]),
        str(run["connections_left_open"]),
    )
    return table


def _delivered(run: dict) -> str:
    if run["delivered"] is None:
        return "-"
    return f"{sum(run['delivered'].values())} of {sum(run['expected'].values())}"


def _optional(value) -> str:
    return "-" if value is None else str(value)


def _long_lived_line(run: dict) -> str:
    """How the long-lived process ended, and the peak size of each collection it tracks."""
    ending = (
        f"exited {run['exit_seconds']:.2f} s after its last call"
        if run["exited"]
        else "killed (hung)"
        if run["exit_code"] is None
        else f"ended early, exit code {run['exit_code']}"
    )
    sizes = [
        f"{name} {sizes['peak']}" + (f"/{sizes['limit']}" if sizes["limit"] is not None else "")
        for name, sizes in run["collections"].items()
    ]
    return f"main() x N: {ending}; peak sizes (/limit): {', '.join(sizes) or 'none measured'}"


def _failure_examples(figures: dict) -> list[str]:
    examples = [
        f"per process, {condition}: {failure}"
        for condition, run in figures["per_process"].items()
        for failure in run["failures"]
    ]
    return examples + [f"long-lived: {failure}" for failure in figures["long_lived"]["failures"]]
