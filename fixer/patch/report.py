"""One report per command: it owns the counts, the exit code and the renderers (text, JSON, GitHub).

Human-readable reports go to stderr and diffs or machine formats to stdout, as black and
ruff do, so ``apply --dry-run > fix.patch`` holds nothing but the patch.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, TextIO, cast

from codemods.status import FAILED_FILE, WRITTEN, FileStatus, FixStatus, Status, VerifyStatus

from .results import FileResult

STYLES: dict[Status, str] = {
    FileStatus.PATCHED: "bold green",
    FileStatus.REPAIRED: "bold green",
    FixStatus.APPLIED: "green",
    FileStatus.RESTORED: "green",
    FileStatus.OK: "green",
    FileStatus.ALREADY_FIXED: "cyan",
    FixStatus.PRESENT: "cyan",
    FixStatus.NOT_APPLICABLE: "dim",
    FixStatus.PENDING: "yellow",
    FileStatus.UNSUPPORTED: "bold red",
    FileStatus.ERROR: "bold red",
    FileStatus.DAMAGED: "bold red",
    FileStatus.BROKEN_UPSTREAM: "bold yellow",
    VerifyStatus.PASS: "bold green",
    VerifyStatus.FAIL: "bold red",
}


class Command(str, Enum):
    """The subcommands; the first four report on files through ``Report``."""

    APPLY = "apply"
    CHECK = "check"
    RESTORE = "restore"
    VERIFY = "verify"
    FIXES = "fixes"
    INIT = "init"
    MONITOR = "monitor"


class Format(str, Enum):
    """How a report is printed: text on stderr, or one JSON object or GitHub workflow commands on stdout."""

    TEXT = "text"
    JSON = "json"
    GITHUB = "github"


# The exit code is the highest that applies: 2 for what could not be handled, 1 for what the command flags.
EXIT_TWO: Mapping[Command, frozenset[str]] = {
    Command.APPLY: FAILED_FILE,
    Command.CHECK: FAILED_FILE,
    Command.RESTORE: FAILED_FILE,
    Command.VERIFY: frozenset({VerifyStatus.ERROR}),
}
# check fails the gate on claude-mpm's own hook where it is known to break: the CI step must stop there too.
EXIT_ONE: Mapping[Command, frozenset[str]] = {
    Command.CHECK: frozenset({FileStatus.PENDING, FileStatus.BROKEN_UPSTREAM}),
    Command.VERIFY: frozenset({VerifyStatus.FAIL}),
}


class Reported(Protocol):
    """What a report is made of: one result per file (``results.FileResult``, or verify's)."""

    @property
    def path(self) -> str: ...

    @property
    def status(self) -> str: ...

    def as_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Options:
    """How loud the text report is."""

    quiet: bool = False
    verbose: bool = False
    no_color: bool = False


@dataclass(frozen=True)
class Rerun:
    """The arguments a next-step hint repeats, so that pasting it works on the same handlers with the same fixes."""

    targets: tuple[str, ...] = ()  # the PATHs, --installed, --python P
    selection: tuple[str, ...] = ()  # --config FILE, --select FIX (for apply and check only)

    def command_line(self, command: Command) -> str:
        selection = self.selection if command in (Command.APPLY, Command.CHECK) else ()
        return shlex.join(["fix-memory-leaks", command.value, *self.targets, *selection])


@dataclass(frozen=True)
class Report:
    """The results of one command over its files, in the order the files were given.

    ``config_source`` None: the command reads no config (the JSON then has no ``config`` key)."""

    command: Command
    results: Sequence[Reported]
    config_source: str | None = None
    notes: Sequence[str] = ()
    dry_run: bool = False
    rerun: Rerun = Rerun()

    @property
    def counts(self) -> dict[str, int]:
        """Files per status, in order of first appearance: the JSON ``summary``."""
        return {str(status): count for status, count in Counter(result.status for result in self.results).items()}

    @property
    def exit_code(self) -> int:
        """0 done or nothing to do; 1 what the command flags (check: pending, verify: fail); 2 any error."""
        statuses = {result.status for result in self.results}
        if statuses & EXIT_TWO[self.command]:
            return 2
        if statuses & EXIT_ONE.get(self.command, frozenset()):
            return 1
        return 0

    def summary_line(self) -> str:
        return self._summary(with_config=True)

    def _summary(self, with_config: bool) -> str:
        """The counts, then the config used (GitHub's log leaves it out) and the next step."""
        parts = [f"{count} {status}" for status, count in self.counts.items()] or ["no files"]
        text = ", ".join(parts)
        if self.dry_run:
            text += " (dry run: nothing written)"
        if self.config_source and with_config:
            text += f"; config: {self.config_source}"
        nudge = self.next_step()
        return f"{self.command.value}: {text}" + (f". {nudge}" if nudge else "")

    def next_step(self) -> str:
        """What the user can do next, said after the summary."""
        counts = self.counts
        nudge = ""
        if self.command is Command.CHECK and counts.get(FileStatus.PENDING):
            nudge = f"run `{self.rerun.command_line(Command.APPLY)}` to patch"
        if self.command is Command.APPLY and any(counts.get(status) for status in WRITTEN):
            nudge = (
                "run again without --dry-run to write it"
                if self.dry_run
                else f"undo with `{self.rerun.command_line(Command.RESTORE)}`"
            )
        if counts.get(FileStatus.BROKEN_UPSTREAM):
            upgrade = "claude-mpm's own hook breaks in real use where a note says so: upgrade claude-mpm"
            nudge = f"{nudge}; {upgrade}" if nudge else upgrade
        return nudge

    def as_json(self) -> dict[str, object]:
        """The documented keys; apply adds ``dry_run`` and, in a dry run, each file's unified ``diff``."""
        files = [result.as_json() for result in self.results]
        if self.command is Command.APPLY and self.dry_run:
            files = [{**entry, "diff": getattr(result, "diff", "")} for entry, result in zip(files, self.results)]
        document: dict[str, object] = {"files": files, "summary": self.counts}
        if self.config_source is not None:
            document["config"] = self.config_source
        if self.command is Command.APPLY:
            document["dry_run"] = self.dry_run
        return document

    def render(self, output: Format, options: Options = Options()) -> int:
        """Print the report in the format asked for; its exit code."""
        if output is Format.JSON:
            self.render_json()
        elif output is Format.GITHUB:
            self.render_github()
        else:
            self.render_text(options)
        return self.exit_code

    def render_json(self, stream: TextIO | None = None) -> None:
        (stream or sys.stdout).write(json.dumps(self.as_json(), indent=2) + "\n")

    def render_text(self, options: Options = Options(), stream: TextIO | None = None) -> None:
        from rich.text import Text

        console = console_for(stream or sys.stderr, options.no_color)
        for note in self.notes:
            console.print(Text(f"note: {note}", style="yellow"))
        for result in self.results:
            self.render_result(console, result, options)
        console.print(Text(self.summary_line(), style="bold"))

    def render_result(self, console, result: Any, options: Options) -> None:
        """One file's lines of the text report (a report of other results overrides this)."""
        from rich.table import Table
        from rich.text import Text

        if result.status in FAILED_FILE:
            console.print(Text(f"{result.status}: {result.path}: {result.message}", style=STYLES[result.status]))
            return
        if options.quiet:
            return
        written = self.dry_run and result.status in WRITTEN
        line = Text(f"{result.path}: ")
        if self.command is Command.RESTORE:  # its message says what it did, in one sentence
            line.append(result.message, style=_style(result.status))
            console.print(line)
            return
        line.append(f"would be {result.status} (dry run)" if written else result.status, style=_style(result.status))
        if result.layout:
            line.append(f"  [layout {result.layout}]", style="dim")
        if result.message:
            line.append(f"  {result.message}")
        console.print(line)
        if getattr(result, "note", ""):
            console.print(Text(f"  note: {result.note}", style="yellow"))
        reasons = {fix.reason for fix in result.fixes}
        all_not_applicable = all(fix.status == FixStatus.NOT_APPLICABLE for fix in result.fixes)
        if all_not_applicable and len(reasons) == 1 and not options.verbose:
            console.print(Text(f"  {reasons.pop()}", style="dim"))
        elif result.fixes:
            table = Table(show_header=True, header_style="bold", box=None, padding=(0, 2, 0, 2))
            table.add_column("fix")
            table.add_column("status")
            table.add_column("why", overflow="fold")
            for fix in result.fixes:
                status = "would apply" if self.dry_run and fix.status == FixStatus.APPLIED else fix.status
                table.add_row(fix.name, Text(status, style=_style(fix.status)), fix.reason)
            console.print(table)
        if result.backup and result.status in WRITTEN and not self.dry_run:
            console.print(Text(f"  backup: {result.backup}", style="dim"))

    def render_github(self, stream: TextIO | None = None) -> None:
        """GitHub Actions workflow commands: one annotation per pending fix, one per failed file, and one per file
        whose note says that claude-mpm's own hook breaks in real use (an error where the command fails on it)."""
        stream = stream or sys.stdout
        for result in cast("Sequence[FileResult]", self.results):
            path = _escape_property(result.path)
            if result.status in FAILED_FILE:
                where = [f"file={path}"] if result.path else []
                where += [f"{key}={value}" for key, value in (("line", result.line), ("col", result.column)) if value]
                properties = ",".join([*where, f"title=fix-memory-leaks {result.status}"])
                stream.write(f"::error {properties}::{_escape(result.message)}\n")
                continue
            if result.note:
                kind = "error" if result.status in EXIT_ONE.get(self.command, frozenset()) else "warning"
                title = f"fix-memory-leaks {result.status}"
                stream.write(f"::{kind} file={path},line={result.note_line},title={title}::{_escape(result.note)}\n")
            for fix in result.fixes:
                if fix.status == FixStatus.PENDING:
                    message = f"memory-leak fix '{fix.name}' is pending: run `{self.rerun.command_line(Command.APPLY)}`"
                    stream.write(
                        f"::error file={path},line={fix.line},title=fix-memory-leaks {fix.name}::{_escape(message)}\n"
                    )
        stream.write(self._summary(with_config=False) + "\n")


def _style(status: str) -> str:
    return STYLES.get(cast(Status, status), "")


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape(text).replace(":", "%3A").replace(",", "%2C")


def colour_wanted(stream: TextIO, no_color: bool) -> bool:
    if no_color or os.environ.get("NO_COLOR"):
        return False
    return hasattr(stream, "isatty") and stream.isatty()


def console_for(stream: TextIO, no_color: bool, soft_wrap: bool = True):
    """A rich console for ``stream``: colour only on a terminal without NO_COLOR or --no-color."""
    from rich.console import Console

    colour = colour_wanted(stream, no_color)
    return Console(
        file=stream, no_color=not colour, color_system="auto" if colour else None, highlight=False, soft_wrap=soft_wrap
    )


def write_diff(diff: str, no_color: bool, stream: TextIO | None = None) -> None:
    """A unified diff on stdout: coloured on a terminal, byte-for-byte plain otherwise."""
    stream = stream or sys.stdout
    if not colour_wanted(stream, no_color):
        stream.write(diff)
        return
    from rich.text import Text

    console = console_for(stream, no_color)
    for line in diff.splitlines():
        style = (
            "bold"
            if line.startswith(("---", "+++"))
            else "cyan"
            if line.startswith("@@")
            else "green"
            if line.startswith("+")
            else "red"
            if line.startswith("-")
            else ""
        )
        console.print(Text(line, style=style), soft_wrap=True)
