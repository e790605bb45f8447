"""Glue between the pipeline and ``fixer.install.breakage``: a result for claude-mpm's own (4.x+) handler is
never ok (or already-fixed) when its hook is known to break in real use; it gets a note instead, and the file
stays as it is (exit 0)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from codemods.reading.shape import Shape
from codemods.status import FileStatus

from ..install.breakage import known_breakage
from .results import FileResult


def with_breakage_note(result: FileResult, target: Path, source: bytes, shape: Shape) -> FileResult:
    """``result``, marked broken-upstream with its note where the handler (and what is installed beside it,
    ``target`` being its real path) shows a known breakage; unchanged otherwise (a pending or patched file too)."""
    if not shape.carries_upstream_rework or result.status not in (FileStatus.OK, FileStatus.ALREADY_FIXED):
        return result
    breakage = known_breakage(target, source)
    if breakage is None:
        return result
    return dataclasses.replace(result, status=FileStatus.BROKEN_UPSTREAM, note=breakage.note, note_line=breakage.line)
