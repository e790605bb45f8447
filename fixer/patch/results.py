"""What a command found for each file: the data every output format renders (``report.Report``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from codemods.status import FileStatus, FixStatus


@dataclass(frozen=True)
class FixResult:
    name: str
    status: FixStatus
    reason: str = ""
    line: int = 0


@dataclass(frozen=True)
class FileResult:
    """One file's result, built once when its run is over."""

    path: str
    status: FileStatus
    layout: str = ""
    fixes: tuple[FixResult, ...] = ()
    message: str = ""
    diff: str = ""
    backup: str | None = None
    note: str = ""  # why claude-mpm's own hook breaks in real use, and the release that works ("" otherwise)
    note_line: int = 0  # the handler line the note is about (for annotations)
    line: int = 0  # where an error's message points (a syntax error's line and column; 0: not known)
    column: int = 0

    def as_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "status": self.status,
            "layout": self.layout,
            "fixes": [{"name": f.name, "status": f.status, "reason": f.reason, "line": f.line} for f in self.fixes],
            "message": self.message,
            "backup": self.backup,
            "note": self.note,
        }


class FileError(Exception):
    """Anything that stops one file: the message says what and, where it can, what to do."""

    def __init__(self, message: str, status: FileStatus = FileStatus.ERROR, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.line, self.column = line, column

    def result(self, path: Path) -> FileResult:
        return FileResult(str(path), self.status, message=str(self), line=self.line, column=self.column)
