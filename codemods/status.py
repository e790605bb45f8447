"""Every status the tool reports, in one place: a fix's, a file's, a verification's.

They are ``str`` enums, so JSON output, comparisons with the documented strings and
``f"{status}"`` all give the documented value (``"not-applicable"``, never
``"FixStatus.NOT_APPLICABLE"``). Standard library only: ``check`` imports this.
"""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    """A status that prints, formats and serialises as its documented value."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class FixStatus(Status):
    """One fix on one file. A plan is pending, present or not applicable; apply turns pending into applied."""

    PENDING = "pending"
    PRESENT = "present"
    NOT_APPLICABLE = "not-applicable"
    APPLIED = "applied"


class FileStatus(Status):
    """One file, as ``apply``, ``check`` and ``restore`` report it."""

    PATCHED = "patched"  # apply wrote the fixes
    # A handler claude-mpm's own fix_memory_leaks.py broke is damaged (an error) for check, and for apply when
    # it cannot be rebuilt; apply rebuilds it from the pristine original that script left: repaired.
    REPAIRED = "repaired"
    ALREADY_FIXED = "already-fixed"
    NOT_APPLICABLE = "not-applicable"
    OK = "ok"  # check: nothing pending
    PENDING = "pending"  # check: some fix is pending
    RESTORED = "restored"
    UNSUPPORTED = "unsupported"
    ERROR = "error"
    DAMAGED = "damaged"
    # claude-mpm's own hook (4.x and later) known to break in real use: left byte-identical, exit 0, never "ok";
    # the result's note names the problem and the release to upgrade to.
    BROKEN_UPSTREAM = "broken-upstream"


class VerifyStatus(Status):
    """One handler run for real by ``verify`` (for fixer/verify to adopt)."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"


# What exits 2 whatever the command: the file could not be handled.
FAILED_FILE = frozenset({FileStatus.UNSUPPORTED, FileStatus.ERROR, FileStatus.DAMAGED})
# What apply has written (or, in a dry run, would write).
WRITTEN = frozenset({FileStatus.PATCHED, FileStatus.REPAIRED})
