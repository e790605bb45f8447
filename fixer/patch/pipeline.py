"""The edge where files are read and judged: check, apply, restore, and the repair of a handler damaged by
claude-mpm's own fix script (from the backup it left).

The decisions are made by the pure core (``codemods.engine``) and the writing by ``safe_write``;
this module reads the bytes, chooses what to do with the core's answer (patch, repair, refuse) and
builds each file's result once.
"""

from __future__ import annotations

import difflib
import io
import os
import shlex
import tokenize
from collections.abc import Sequence
from pathlib import Path

from codemods.engine import Assessment, Damaged, Outcome, VerificationError, diagnose
from codemods.fixes.plan import Plan
from codemods.fixes.registry import anchor_line
from codemods.reading.damage import SCRIPT, original_of
from codemods.reading.shape import Shape, UnsupportedShape, read_marks
from codemods.settings import Settings
from codemods.status import FileStatus, FixStatus

from ..install.targets import claude_mpm_version
from . import safe_write
from .breakage_notes import with_breakage_note
from .results import FileError, FileResult, FixResult
from .safe_write import BACKUP_SUFFIX, atomic_write, backups, file_mode, folder_lock, newest_backup

# ---------------------------------------------------------------- reading and judging


def read_source(path: Path) -> bytes:
    try:
        source = path.read_bytes()
    except OSError as error:
        raise FileError(f"cannot read the file: {error.strerror or error}") from None
    if not source.strip():
        raise FileError("the file is empty: not a claude-mpm hook handler", FileStatus.UNSUPPORTED)
    if b"\0" in source:
        raise FileError("the file holds binary data (NUL bytes): not a Python source file")
    encoding = _encoding(source)
    try:
        source.decode(encoding)
    except UnicodeDecodeError as error:
        declared = "what its coding line declares" if _declares_encoding(source) else "the default: none is declared"
        raise FileError(f"not valid {encoding} text at byte {error.start} ({encoding} is {declared})") from None
    return source


def _declares_encoding(source: bytes) -> bool:
    return any(tokenize.cookie_re.match(line.decode("latin-1")) for line in source.splitlines()[:2])


def _encoding(source: bytes) -> str:
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
    except SyntaxError as error:
        if str(error).startswith("invalid or missing encoding declaration"):
            try:  # no cookie, and the first lines are not utf-8: say where, like the check below
                source.decode("utf-8")
            except UnicodeDecodeError as bad:
                raise FileError(f"not valid utf-8 text at byte {bad.start} (no other encoding is declared)") from None
        raise FileError(f"bad encoding declaration: {error}") from None
    return "utf-8" if encoding == "utf-8-sig" else encoding


def _judged(call, *args):
    """Run a core call, turning its refusals into FileErrors."""
    try:
        return call(*args)
    except SyntaxError as error:
        raise FileError(
            f"does not parse as Python (line {error.lineno}: {error.msg})",
            line=error.lineno or 0,
            column=error.offset or 0,
        ) from None
    except UnsupportedShape as error:
        raise FileError(f"unrecognised handler: {error}; left untouched", FileStatus.UNSUPPORTED) from None
    except VerificationError as error:
        raise FileError(f"{error}; nothing was written (please report this file)") from None


def _fix_results(
    plans: dict[str, Plan], shape: Shape, select: Sequence[str], applied: Sequence[str]
) -> tuple[FixResult, ...]:
    """Each selected fix's status: the plan's, with pending turned into applied for what was applied."""
    return tuple(
        FixResult(
            name,
            FixStatus.APPLIED if name in applied else plans[name].status,
            plans[name].reason,
            anchor_line(shape, name),
        )
        for name in select
    )


def check_file(path: Path, select: Sequence[str]) -> FileResult:
    """Which selected fixes are pending; standard library only."""
    target = Path(os.path.realpath(path))
    try:
        source = read_source(target)
        found: Assessment | Damaged = _judged(diagnose, source)
        if isinstance(found, Damaged):
            return _damage_report(path, target, source, found)
    except FileError as error:
        return error.result(path)
    except Exception as error:  # a bug of ours: one line naming the file, never a traceback
        return _internal_error(path, error)
    fixes = _fix_results(found.plans, found.shape, select, ())
    status = FileStatus.PENDING if any(f.status == FixStatus.PENDING for f in fixes) else FileStatus.OK
    return with_breakage_note(FileResult(str(path), status, found.shape.layout, fixes), target, source, found.shape)


# ---------------------------------------------------------------- damaged by claude-mpm's own fix script


def _damage_report(path: Path, target: Path, damaged: bytes, damage: Damaged) -> FileResult:
    """What check says about a damaged handler: that apply can rebuild it, or how to get the original back."""
    try:
        backup, _, shape = _pristine_backup(target, damaged, damage)
    except FileError as error:
        return FileResult(str(path), FileStatus.DAMAGED, message=str(error))
    remedy = f"`fix-memory-leaks apply` rebuilds it from {backup.name}, its pristine original"
    return FileResult(str(path), FileStatus.DAMAGED, shape.layout, message=f"{_cause(damage)}; {remedy}")


def _cause(damage: Damaged) -> str:
    return f"damaged by {SCRIPT} ({damage})"


def _pristine_backup(target: Path, damaged: bytes, damage: Damaged) -> tuple[Path, bytes, Shape]:
    """The newest backup that is the pristine original ``damaged`` was made from, its bytes and shape.

    Without one, a FileError (damaged) that says how to get the original back."""
    candidates = backups(target)
    for backup in reversed(candidates):
        try:
            pristine = backup.read_bytes()
        except OSError:
            continue
        shape = original_of(damaged, pristine)
        if shape is not None:
            return backup, pristine, shape
    if candidates:
        names = ", ".join(candidate.name for candidate in candidates)
        missing = f"{names} {'is' if len(candidates) == 1 else 'are'} not its pristine original"
    else:
        missing = f"no {target.name}{BACKUP_SUFFIX} beside it"
    raise FileError(
        f"{_cause(damage)}, and {missing}: {_original_back(target)} brings the original back, then run "
        "`fix-memory-leaks apply`; left untouched",
        FileStatus.DAMAGED,
    )


def _original_back(target: Path) -> str:
    """The command that brings the pristine handler back: git's, for a file git tracks in a checkout without
    dist-info (claude-mpm's own source tree); pip's otherwise."""
    version = claude_mpm_version(target)
    if version is None and tracked_by_git(target):
        return f"`git checkout -- {shlex.quote(str(target))}`"
    return f"`pip install --force-reinstall claude-mpm=={version or '<version>'}`"


def tracked_by_git(target: Path) -> bool:
    """``target`` lies in a git work tree that tracks it (only asked when a damaged file has no backup)."""
    if not any((folder / ".git").exists() for folder in target.parents):
        return False
    import subprocess

    try:
        listed = subprocess.run(
            ["git", "-C", str(target.parent), "ls-files", "--error-unmatch", "--", target.name],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return listed.returncode == 0


def _repair(path: Path, target: Path, damaged: bytes, damage: Damaged, select, settings, dry_run) -> FileResult:
    """Start again from the pristine original the script left, fix that, and keep the damaged file too."""
    from codemods.engine import fix_source

    backup, pristine, _ = _pristine_backup(target, damaged, damage)
    outcome: Outcome = _judged(fix_source, pristine, select, settings)
    fixes = _fix_results(outcome.plans, outcome.shape, select, outcome.applied)
    diff, saved = "", None
    if dry_run:
        diff = unified_diff(str(path), damaged, outcome.source)
        done = f"would be rebuilt from {backup.name}"
    else:
        written, kept = safe_write.write_repair(target, damaged, pristine, outcome.source)
        saved = str(written)
        done = f"rebuilt from {backup.name}, the damaged file kept as {kept.name}"
    message = f"{_cause(damage)}; {done}"
    return FileResult(str(path), FileStatus.REPAIRED, outcome.shape.layout, fixes, message, diff, saved)


# ---------------------------------------------------------------- apply


def apply_file(path: Path, select: Sequence[str], settings: Settings, dry_run: bool = False) -> FileResult:
    """Patch one handler, or (dry run) say how; never leaves a half-written or lost file."""
    target = Path(os.path.realpath(path))
    try:
        if dry_run:
            return _apply_locked(path, target, select, settings, dry_run=True)
        with folder_lock(target.parent):
            return _apply_locked(path, target, select, settings, dry_run=False)
    except FileError as error:
        return error.result(path)
    except Exception as error:  # write_patch has already put the original back
        return _internal_error(path, error)


def _internal_error(path: Path, error: Exception) -> FileResult:
    return FileResult(
        str(path),
        FileStatus.ERROR,
        message=f"internal error ({type(error).__name__}: {error}); the file is unchanged, please report this file",
    )


def _apply_locked(path: Path, target: Path, select, settings: Settings, dry_run: bool) -> FileResult:
    from codemods import engine

    original = read_source(target)
    done: Outcome | Damaged = _judged(engine.fix_or_diagnose, original, select, settings)
    if isinstance(done, Damaged):
        return _repair(path, target, original, done, select, settings, dry_run)
    fixes = _fix_results(done.plans, done.shape, select, done.applied)
    if not done.changed:
        unchanged = FileResult(str(path), _apply_status(done, fixes), done.shape.layout, fixes)
        return with_breakage_note(unchanged, target, original, done.shape)
    diff, backup = "", None
    if dry_run:
        diff = unified_diff(str(path), original, done.source)
    else:
        backup = safe_write.write_patch(target, original, done.source, ours=bool(done.shape.marks))
    return FileResult(str(path), _apply_status(done, fixes), done.shape.layout, fixes, diff=diff, backup=backup)


def _apply_status(outcome: Outcome, fixes: Sequence[FixResult]) -> FileStatus:
    if outcome.applied:
        return FileStatus.PATCHED
    if outcome.shape.carries_upstream_rework or any(f.status == FixStatus.PRESENT for f in fixes):
        return FileStatus.ALREADY_FIXED
    return FileStatus.NOT_APPLICABLE


# ---------------------------------------------------------------- restore


def restore_file(path: Path, force: bool = False) -> FileResult:
    """Put the newest backup back, atomically; the backup stays."""
    target = Path(os.path.realpath(path))
    try:
        with folder_lock(target.parent):
            backup = newest_backup(target)
            if backup is None:
                raise FileError(f"no backup to restore ({target.name}{BACKUP_SUFFIX} not found next to it)")
            pristine = backup.read_bytes()
            current = target.read_bytes() if target.exists() else b""
            if current != pristine and not read_marks(current.decode("utf-8", "replace")) and not force:
                raise FileError(
                    "the file carries no fix-memory-leaks marks (not patched by this tool, or replaced since, "
                    f"e.g. by an upgrade); restoring {backup.name} would overwrite it. Use --force to restore anyway"
                )
            if current != pristine:
                atomic_write(target, pristine, file_mode(target) if target.exists() else file_mode(backup))
    except FileError as error:
        return error.result(path)
    except OSError as error:
        return FileResult(str(path), FileStatus.ERROR, message=f"restore failed: {error.strerror or error}")
    except Exception as error:
        return _internal_error(path, error)
    done = f"restored from {backup}" if current != pristine else f"already identical to {backup}: nothing to restore"
    return FileResult(str(path), FileStatus.RESTORED, message=f"{done} (the backup is kept)", backup=str(backup))


# ---------------------------------------------------------------- diff


def unified_diff(display: str, before: bytes, after: bytes) -> str:
    encoding = _encoding(before)
    old = before.decode(encoding).splitlines(keepends=True)
    new = after.decode(encoding).splitlines(keepends=True)
    name = display.lstrip("/")
    lines = difflib.unified_diff(old, new, fromfile=f"a/{name}", tofile=f"b/{name}")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
