"""Reporting: the live progress of the runs, and the verdicts as text (stderr) or JSON (stdout)."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TextIO

from ..patch.report import Command, Options, Report
from .driver.contract import HANG_LIMIT_SECONDS, Condition
from .figures import Figures, LongLived, PerProcess
from .launcher import Progress
from .runner import Verification
from .verdict import ERROR, FAIL, PASS

RUN_LABELS = {
    Condition.SERVER_UP: "hooks, server up",
    Condition.NO_SERVER: "hooks, no server",
    Condition.WEDGED: "hooks, server hung",
}


@dataclass
class Display:
    """What verify shows while it works: ``announce`` a handler before its runs, ``for_file`` its runs' progress."""

    announce: Callable[[str], None] | None = None
    for_file: Callable[[Path], Progress | None] = lambda path: None


@contextlib.contextmanager
def progress_display(stream: TextIO, quiet: bool = False, no_color: bool = False) -> Iterator[Display]:
    """Yields the :class:`Display` on ``stream``.

    On a terminal, a live bar per run; elsewhere (CI logs) a line as each run starts, so a
    two-minute verification is not silent; with ``quiet``, nothing.
    """
    if quiet:
        yield Display()
        return
    if not stream.isatty():

        def for_file(path: Path) -> Progress:
            started = set()

            def report(stage: str, done: int, total: int) -> None:
                if stage not in started:
                    started.add(stage)
                    print(f"verify: {path}: {stage} ({total} events)...", file=stream, flush=True)

            return report

        yield Display(lambda line: print(f"verify: {line}", file=stream, flush=True), for_file)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar
    from rich.text import Text

    from ..patch.report import console_for

    with Bar(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console_for(stream, no_color),
        transient=True,
    ) as bar:

        def for_bar(path: Path) -> Progress:
            tasks: dict[str, TaskID] = {}

            def report(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(f"{path.name}: {stage}", total=total)
                bar.update(tasks[stage], completed=done)

            return report

        yield Display(lambda line: bar.console.print(Text(f"verify: {line}", style="dim")), for_bar)


class VerifyReport(Report):
    """verify's report: the one ``Report`` (counts, exit code, JSON), with a figures table per handler."""

    def __init__(self, verifications: Sequence[Verification]) -> None:
        super().__init__(Command.VERIFY, verifications)

    def next_step(self) -> str:
        return ""

    def summary_line(self) -> str:
        return f"{super().summary_line()} (a hook still running after {HANG_LIMIT_SECONDS:g} s counts as hung)"

    def render_result(self, console, result: Any, options: Options) -> None:
        """A table of figures per file, then the verdict with its reasons."""
        from rich.text import Text

        verification: Verification = result
        styles: dict[str, str] = {PASS: "bold green", FAIL: "bold red", ERROR: "bold red"}
        if verification.status == ERROR:
            console.print(Text(f"error: {verification.path}: {verification.message}", style=styles[ERROR]))
            return
        if options.quiet and verification.status == PASS:
            return
        figures = verification.figures
        assert figures is not None  # measured: not an error
        line = Text(f"{verification.path}: ")
        line.append(verification.status, style=styles[verification.status])
        line.append(
            f"  [layout {verification.layout}; Python {figures.python_version}; transport {figures.transport}]",
            style="dim",
        )
        console.print(line)
        if not options.quiet:
            console.print(Text(f"  runs: {verification.hook.get('how', '?')}", style="dim"))
            console.print(Text(f"  isolation: {verification.isolation}", style="dim"))
            console.print(_figures_table(figures))
            console.print(Text("  " + _channels_line(figures), style="dim"))
            if figures.long_lived is not None:
                console.print(Text("  " + _long_lived_line(figures.long_lived), style="dim"))
            for note in verification.notes:
                console.print(Text(f"  note: {note}", style="dim"))
        for flag in verification.flags:
            console.print(Text(f"  ! {flag}", style="yellow"))
        for reason in verification.reasons:
            console.print(Text(f"  ✗ {reason}", style="red"))
        if options.verbose:
            for example in _failure_examples(figures):
                console.print(Text(f"    {example}", style="dim"))


def _figures_table(figures: Figures):
    from rich.table import Table

    table = Table(box=None, padding=(0, 1, 0, 1), header_style="bold")  # fits 80 columns (CI logs)
    for header in ("run", "calls", "hung", "med/max s", "delivered", "opened", "peak", "left open"):
        table.add_column(header, justify="left" if header == "run" else "right", no_wrap=True)
    for condition, run in figures.per_process.items():
        table.add_row(
            RUN_LABELS.get(condition, condition),
            f"{run.hooks}/{run.hooks + run.not_run}" if run.not_run else str(run.hooks),
            str(run.hung),
            f"{run.hook_seconds_median or 0:.2f}/{run.hook_seconds_max or 0:.2f}",
            _delivered(run),
            _optional(run.connections_opened),
            "-",
            _optional(run.connections_left_open),
        )
    long_lived = figures.long_lived
    if long_lived is not None:
        table.add_row(
            "main() x N",
            f"{long_lived.calls_done}/{long_lived.calls}",
            "1" if long_lived.hung else "0",
            "-",
            _delivered(long_lived),
            str(long_lived.connections_opened),
            str(long_lived.peak_open),
            str(long_lived.connections_left_open),
        )
    return table


def _delivered(run: PerProcess | LongLived) -> str:
    if run.delivered is None:
        return "-"
    got = str(sum(run.delivered.values()))
    return got if run.expected is None else f"{got} of {sum(run.expected.values())}"


def _channels_line(figures: Figures) -> str:
    """How the events reached the dashboard: Socket.IO claude_event, HTTP POST /api/events, or not at all."""
    names = {"socketio": "Socket.IO claude_event", "http": "HTTP POST /api/events"}
    counted: Counter = Counter()
    for run in [*figures.per_process.values(), figures.long_lived]:
        if run is not None:
            counted.update(run.channels or {})
    arrived = ", ".join(f"{names.get(channel, channel)} ({count})" for channel, count in sorted(counted.items()))
    return f"events arrived as: {arrived or 'nothing'}"


def _optional(value) -> str:
    return "-" if value is None else str(value)


def _long_lived_line(run: LongLived) -> str:
    """How the long-lived process ended, and the peak size of each collection it tracks."""
    ending = (
        f"exited {run.exit_seconds or 0:.2f} s after its last call"
        if run.exited
        else "killed (hung)"
        if run.exit_code is None
        else f"ended early, exit code {run.exit_code}"
    )
    sizes = [
        f"{name} {sizes['peak']}" + (f"/{sizes['limit']}" if sizes["limit"] is not None else "")
        for name, sizes in run.collections.items()
    ]
    return f"main() x N: {ending}; peak sizes (/limit): {', '.join(sizes) or 'none measured'}"


def _failure_examples(figures: Figures) -> list[str]:
    examples = [
        f"per process, {condition}: {failure}"
        for condition, run in figures.per_process.items()
        for failure in run.failures
    ]
    long_lived = figures.long_lived
    return examples + ([f"long-lived: {failure}" for failure in long_lived.failures] if long_lived else [])
