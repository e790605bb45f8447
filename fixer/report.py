"""Rendering results: a rich table per file for people, JSON and GitHub annotations for machines.

Human-readable reports go to stderr and diffs or machine formats to stdout, as black and
ruff do, so ``apply --dry-run > fix.patch`` holds nothing but the patch.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from .results import (
    ALREADY_FIXED,
    APPLIED,
    BROKEN_UPSTREAM,
    DAMAGED,
    ERROR,
    FAILED,
    NOT_APPLICABLE,
    OK,
    PATCHED,
    PENDING,
    PRESENT,
    REPAIRED,
    RESTORED,
    UNSUPPORTED,
    FileResult,
    summary,
)

STYLES = {
    PATCHED: "bold green",
    REPAIRED: "bold green",
    APPLIED: "green",
    RESTORED: "green",
    OK: "green",
    ALREADY_FIXED: "cyan",
    PRESENT: "cyan",
    NOT_APPLICABLE: "dim",
    PENDING: "yellow",
    BROKEN_UPSTREAM: "bold yellow",
    UNSUPPORTED: "bold red",
    ERROR: "bold red",
    DAMAGED: "bold red",
}
WRITTEN = (PATCHED, REPAIRED)


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


def render_text(
    results: Sequence[FileResult],
    command: str,
    *,
    config_source: str = "",
    notes: Sequence[str] = (),
    dry_run: bool = False,
    quiet: bool = False,
    verbose: bool = False,
    no_color: bool = False,
    stream: TextIO | None = None,
) -> None:
    from rich.table import Table
    from rich.text import Text

    stream = stream or sys.stderr
    console = console_for(stream, no_color)
    for note in notes:
        console.print(Text(f"note: {note}", style="yellow"))
    for result in results:
        if result.status in FAILED:
            console.print(Text(f"{result.status}: {result.path}: {result.message}", style=STYLES[result.status]))
            continue
        if quiet:
            continue
        shown = f"would be {result.status} (dry run)" if dry_run and result.status in WRITTEN else result.status
        line = Text(f"{result.path}: ")
        line.append(shown, style=STYLES.get(result.status, ""))
        if result.layout:
            line.append(f"  [layout {result.layout}]", style="dim")
        if result.message:
            line.append(f"  {result.message}")
        console.print(line)
        if result.note:
            console.print(Text(f"  note: {result.note}", style="yellow"))
        reasons = {fix.reason for fix in result.fixes}
        if all(fix.status == NOT_APPLICABLE for fix in result.fixes) and len(reasons) == 1 and not verbose:
            console.print(Text(f"  {reasons.pop()}", style="dim"))
        elif result.fixes:
            table = Table(show_header=True, header_style="bold", box=None, padding=(0, 2, 0, 2))
            table.add_column("fix")
            table.add_column("status")
            table.add_column("why", overflow="fold")
            for fix in result.fixes:
                status = "would apply" if dry_run and fix.status == APPLIED else fix.status
                table.add_row(fix.name, Text(status, style=STYLES.get(fix.status, "")), fix.reason)
            console.print(table)
        if result.backup and result.status in WRITTEN and not dry_run:
            console.print(Text(f"  backup: {result.backup}", style="dim"))
    console.print(Text(summary_line(results, command, config_source, dry_run), style="bold"))


def summary_line(results: Sequence[FileResult], command: str, config_source: str = "", dry_run: bool = False) -> str:
    counts = summary(results)
    parts = [f"{count} {status}" for status, count in counts.items()] or ["no files"]
    text = ", ".join(parts)
    if dry_run:
        text += " (dry run: nothing written)"
    if config_source:
        text += f"; config: {config_source}"
    apply_next = "run again without --dry-run to write it" if dry_run else "undo with `fix-memory-leaks restore`"
    nudge = {
        "check": "run `fix-memory-leaks apply` to patch" if counts.get(PENDING) else "",
        "apply": apply_next if any(counts.get(status) for status in WRITTEN) else "",
    }.get(command, "")
    if counts.get(BROKEN_UPSTREAM):
        upgrade = "claude-mpm's own hook breaks in real use where a note says so: upgrade claude-mpm"
        nudge = f"{nudge}; {upgrade}" if nudge else upgrade
    return f"{command}: {text}" + (f". {nudge}" if nudge else "")


def render_json(results: Sequence[FileResult], config_source: str, stream: TextIO | None = None) -> None:
    document = {
        "files": [result.as_json() for result in results],
        "summary": summary(results),
        "config": config_source,
    }
    (stream or sys.stdout).write(json.dumps(document, indent=2) + "\n")


def render_github(results: Sequence[FileResult], stream: TextIO | None = None) -> None:
    """GitHub Actions workflow commands: one annotation per pending fix, one per failed file, and a warning per
    file whose note says that claude-mpm's own hook breaks in real use."""
    stream = stream or sys.stdout
    for result in results:
        path = _escape_property(result.path)
        if result.status in FAILED:
            stream.write(f"::error file={path},title=fix-memory-leaks {result.status}::{_escape(result.message)}\n")
            continue
        if result.note:  # a warning: the file is left as it is and the exit code stays 0
            title = f"fix-memory-leaks {result.status}"
            stream.write(f"::warning file={path},line={result.note_line},title={title}::{_escape(result.note)}\n")
        for fix in result.fixes:
            if fix.status == PENDING:
                message = f"memory-leak fix '{fix.name}' is pending: run `fix-memory-leaks apply`"
                stream.write(
                    f"::error file={path},line={fix.line},title=fix-memory-leaks {fix.name}::{_escape(message)}\n"
                )
    stream.write(summary_line(results, "check") + "\n")


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape(text).replace(":", "%3A").replace(",", "%2C")


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
