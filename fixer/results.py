"""What a command found for each file: the data every output format renders."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

# File statuses.
PATCHED, ALREADY_FIXED, NOT_APPLICABLE, UNSUPPORTED, ERROR = (
    "patched",
    "already-fixed",
    "not-applicable",
    "unsupported",
    "error",
)
OK, PENDING, RESTORED = "ok", "pending", "restored"
# A handler claude-mpm's own fix_memory_leaks.py broke is damaged (an error) for check, and for apply when
# it cannot be rebuilt; apply rebuilds it from the pristine original that script left: repaired.
DAMAGED, REPAIRED = "damaged", "repaired"
# claude-mpm's own hook (4.x and later) known to break in real use: left byte-identical, exit 0, never "ok";
# the result's note names the problem and the release to upgrade to.
BROKEN_UPSTREAM = "broken-upstream"
# Fix statuses (plus PENDING and NOT_APPLICABLE above).
APPLIED, PRESENT = "applied", "present"

FAILED = (UNSUPPORTED, ERROR, DAMAGED)


@dataclass(frozen=True)
class FixResult:
    name: str
    status: str
    reason: str = ""
    line: int = 0


@dataclass
class FileResult:
    path: str
    status: str
    layout: str = ""
    fixes: list[FixResult] = field(default_factory=list)
    message: str = ""
    diff: str = ""
    backup: str | None = None
    note: str = ""  # why claude-mpm's own hook breaks in real use, and the release that works ("" otherwise)
    note_line: int = 0  # the handler line the note is about (for annotations)

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


def summary(results: Sequence[FileResult]) -> dict[str, int]:
    return dict(Counter(result.status for result in results))


def exit_code(command: str, results: Sequence[FileResult]) -> int:
    """0 done or nothing to do; 1 (check only) fixes pending; 2 any error, unrecognised or damaged file."""
    if any(result.status in FAILED for result in results):
        return 2
    if command == "check" and any(result.status == PENDING for result in results):
        return 1
    return 0
