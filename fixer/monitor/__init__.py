"""``fix-memory-leaks monitor``: the memory (RSS) of running claude-mpm and hook-handler processes.

It replaces upstream's ``monitor_memory.sh`` loop over ``ps``: psutil reads the numbers on every
platform, and each process's first reading is kept so the view shows how much it grew since the
monitor first saw it, which is what a leak looks like.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TextIO

import psutil

MB = 2**20


class ProcessKind(str, Enum):
    """What a watched process is (the KIND column)."""

    HOOK_HANDLER = "hook-handler"
    CLAUDE_MPM = "claude-mpm"

    def __str__(self) -> str:
        return str(self.value)


class Level(str, Enum):
    """A process's RSS against the threshold (the STATUS column)."""

    OK = "ok"
    HIGH = "high"

    def __str__(self) -> str:
        return str(self.value)


HOOK_HANDLER, CLAUDE_MPM = ProcessKind.HOOK_HANDLER, ProcessKind.CLAUDE_MPM
# Python's options that take a value, so the script is not mistaken for one.
OPTIONS_WITH_VALUE = {"-W", "-X", "--check-hash-based-pycs"}


@dataclass(frozen=True)
class ProcessSample:
    pid: int
    kind: ProcessKind
    rss: int  # bytes
    growth: int  # bytes since the monitor first saw this process
    command: str


def program_names(cmdline: Sequence[str]) -> list[str]:
    """What a process runs: its executable and, for Python, the script or ``-m`` module (not a ``-c`` string,
    nor a file merely named in the arguments, as in ``vim hook_handler.py``)."""
    if not cmdline:
        return []
    names = [_basename(cmdline[0])]
    if names[0].startswith("python"):
        arguments = iter(cmdline[1:])
        for argument in arguments:
            if argument in OPTIONS_WITH_VALUE:
                next(arguments, None)
            elif argument == "-c":
                break
            elif argument == "-m":
                names.append(next(arguments, ""))
                break
            elif argument == "-" or not argument.startswith("-"):
                names.append(_basename(argument))
                break
    return names


def _basename(path: str) -> str:
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def process_kind(cmdline: Sequence[str]) -> ProcessKind | None:
    """``hook-handler`` (``hook_handler.py``, or the module ``claude_mpm.hooks.claude_hooks.hook_handler``),
    ``claude-mpm`` (its command, or any ``claude_mpm`` module), or None."""
    names = program_names(cmdline)
    if any(name == "hook_handler.py" or name.endswith(".hook_handler") for name in names):
        return HOOK_HANDLER
    if any(name.startswith(("claude-mpm", "claude_mpm")) for name in names):
        return CLAUDE_MPM
    return None


class Monitor:
    """Reads the matching processes; remembers each running one's first RSS (by pid and start time, so a reused
    pid starts afresh, and forgets processes that ended: hook handlers come and go with each event)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self._first_rss: dict[tuple[int, float], int] = {}
        self._own_pid = os.getpid()

    def sample(self) -> list[ProcessSample]:
        """The matching processes now, the largest first."""
        samples, first_rss = [], {}
        for process in psutil.process_iter(["pid", "cmdline", "create_time", "memory_info"]):
            info = process.info
            kind = process_kind(info["cmdline"] or ())
            if kind is None or info["pid"] == self._own_pid or info["memory_info"] is None:
                continue  # not ours, the monitor itself, or a process we may not read (another user's)
            rss, identity = info["memory_info"].rss, (info["pid"], info["create_time"])
            first_rss[identity] = self._first_rss.get(identity, rss)
            command = " ".join(" ".join(info["cmdline"]).split())  # one line, even with newlines in an argument
            samples.append(ProcessSample(info["pid"], kind, rss, rss - first_rss[identity], command))
        self._first_rss = first_rss
        return sorted(samples, key=lambda sample: (-sample.rss, sample.pid))


def above(samples: Sequence[ProcessSample], threshold_mb: int) -> list[ProcessSample]:
    return [sample for sample in samples if sample.rss > threshold_mb * MB]


def _rows(samples: Sequence[ProcessSample], threshold_mb: int, with_growth: bool) -> list[list[str]]:
    """Header and one row per process: the cells both renderers show."""
    header = ["PID", "KIND", "RSS_MB", *(["GROWTH_MB"] if with_growth else []), "STATUS", "COMMAND"]
    rows = [header]
    for sample in samples:
        growth = [f"{sample.growth / MB:+.1f}"] if with_growth else []
        level = Level.HIGH if sample.rss > threshold_mb * MB else Level.OK
        rows.append([str(sample.pid), str(sample.kind), f"{sample.rss / MB:.1f}", *growth, str(level), sample.command])
    return rows


def _summary(samples: Sequence[ProcessSample], threshold_mb: int) -> str:
    if not samples:
        return "no claude-mpm or hook-handler process is running"
    total = sum(sample.rss for sample in samples) / MB
    high = above(samples, threshold_mb)
    warning = f"; WARNING: {len(high)} above {threshold_mb} MB" if high else f"; all below {threshold_mb} MB"
    processes = "1 process" if len(samples) == 1 else f"{len(samples)} processes"
    return f"{processes}, {total:.1f} MB in all{warning}"


def render_plain(samples: Sequence[ProcessSample], threshold_mb: int, with_growth: bool, stream: TextIO) -> None:
    """Aligned columns under a header, the command last, then a ``summary:`` line: easy for scripts."""
    rows = _rows(samples, threshold_mb, with_growth)
    if len(rows) > 1:
        widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
        for row in rows:
            stream.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] + "\n")
    stream.write(f"summary: {_summary(samples, threshold_mb)}\n")


def rich_view(samples: Sequence[ProcessSample], threshold_mb: int, with_growth: bool, footer: str = ""):
    """The summary (red when a process is above the threshold), the table, then ``footer`` (wrapped, not cut)."""
    from rich.console import Group, RenderableType
    from rich.table import Table
    from rich.text import Text

    rows = _rows(samples, threshold_mb, with_growth)
    high = bool(above(samples, threshold_mb))
    parts: list[RenderableType] = [Text(_summary(samples, threshold_mb), style="bold red" if high else "bold")]
    if samples:
        table = Table(expand=True)
        numeric = {"PID", "RSS_MB", "GROWTH_MB"}
        for index, name in enumerate(rows[0][:-1]):
            widest = max(len(row[index]) for row in rows)
            table.add_column(name, justify="right" if name in numeric else "left", no_wrap=True, width=widest)
        # The command takes what is left of the terminal's width, cut short with an ellipsis.
        table.add_column(rows[0][-1], overflow="ellipsis", no_wrap=True, ratio=1)
        for row, sample in zip(rows[1:], samples):
            table.add_row(*row, style="bold red" if sample.rss > threshold_mb * MB else "")
        parts.append(table)
    if footer:
        parts.append(Text(footer, style="dim"))
    return Group(*parts)


def print_once(threshold_mb: int, no_color: bool, stream: TextIO | None = None) -> int:
    """One reading: a rich table on a terminal, plain columns otherwise; 1 when a process is above the threshold."""
    from ..patch.report import console_for

    stream = stream or sys.stdout
    samples = Monitor().sample()
    if stream.isatty():
        console_for(stream, no_color).print(rich_view(samples, threshold_mb, with_growth=False))
    else:
        render_plain(samples, threshold_mb, with_growth=False, stream=stream)
    return 1 if above(samples, threshold_mb) else 0


def watch(threshold_mb: int, interval: float, no_color: bool, config_source: str, stream: TextIO | None = None) -> None:
    """Until Ctrl+C: a live table on a terminal; otherwise a timestamped plain reading per interval (a log)."""
    from ..patch.report import console_for

    stream = stream or sys.stdout
    monitor = Monitor()
    if not stream.isatty():
        while True:
            stream.write(time.strftime("time: %Y-%m-%d %H:%M:%S\n"))
            render_plain(monitor.sample(), threshold_mb, with_growth=True, stream=stream)
            stream.flush()
            time.sleep(interval)
    from rich.live import Live

    def view():
        elapsed = time.monotonic() - monitor.started
        footer = (
            f"Ctrl+C to stop; growth since the monitor started {elapsed:.0f} s ago; "
            f"every {interval:g} s; config: {config_source}"
        )
        return rich_view(monitor.sample(), threshold_mb, with_growth=True, footer=footer)

    # Live counts the lines it drew to redraw them, so it needs rich to wrap long lines, not the terminal.
    with Live(view(), console=console_for(stream, no_color, soft_wrap=False), auto_refresh=False) as live:
        while True:
            time.sleep(interval)
            live.update(view(), refresh=True)
