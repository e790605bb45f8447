"""The edge where files are read and written: check, apply (backup, atomic write, verify, roll back), restore,
and the repair of a handler damaged by claude-mpm's own fix script (from the backup it left).

The decisions are made by the pure core (``codemods.engine``); this module only moves bytes,
and moves them so that a file is always either its original or fully patched.
"""

from __future__ import annotations

import difflib
import glob
import io
import os
import re
import tempfile
import tokenize
from collections.abc import Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from codemods.damage import SCRIPT, ScriptDamage, original_of
from codemods.engine import Outcome, VerificationError, assess
from codemods.plan import NOT_APPLICABLE as PLAN_NOT_APPLICABLE
from codemods.plan import PENDING as PLAN_PENDING
from codemods.plan import anchor_line
from codemods.settings import Settings
from codemods.shape import Shape, UnsupportedShape, read_marks

from .breakage_notes import with_breakage_note
from .results import (
    ALREADY_FIXED,
    APPLIED,
    DAMAGED,
    ERROR,
    NOT_APPLICABLE,
    OK,
    PATCHED,
    PENDING,
    PRESENT,
    REPAIRED,
    RESTORED,
    UNSUPPORTED,
    FileResult,
    FixResult,
)
from .targets import claude_mpm_version

BACKUP_SUFFIX = ".backup"
DAMAGED_SUFFIX = ".damaged"  # a damaged handler, kept beside its repair; never a backup restore would put back


class FileError(Exception):
    """Anything that stops one file: the message says what and, where it can, what to do."""

    def __init__(self, message: str, status: str = ERROR) -> None:
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------- reading and judging


def read_source(path: Path) -> bytes:
    try:
        source = path.read_bytes()
    except OSError as error:
        raise FileError(f"cannot read the file: {error.strerror or error}") from None
    if not source.strip():
        raise FileError("the file is empty: not a claude-mpm hook handler", UNSUPPORTED)
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
        raise FileError(f"does not parse as Python (line {error.lineno}: {error.msg})") from None
    except UnsupportedShape as error:
        raise FileError(f"unrecognised handler: {error}; left untouched", UNSUPPORTED) from None
    except VerificationError as error:
        raise FileError(f"{error}; nothing was written (please report this file)") from None


def _fix_results(outcome_plans, shape, select: Sequence[str], applied: Sequence[str]) -> list[FixResult]:
    results = []
    for name in select:
        plan = outcome_plans[name]
        if plan.status == PLAN_PENDING:
            status = APPLIED if name in applied else PENDING
        elif plan.status == PLAN_NOT_APPLICABLE:
            status = NOT_APPLICABLE
        else:
            status = PRESENT
        results.append(FixResult(name, status, plan.reason, anchor_line(shape, name)))
    return results


def check_file(path: Path, select: Sequence[str]) -> FileResult:
    """Which selected fixes are pending; standard library only."""
    target = Path(os.path.realpath(path))
    try:
        source = read_source(target)
        try:
            shape, plans = _judged(assess, source)
        except ScriptDamage as damage:
            return _damage_report(path, target, source, damage)
    except FileError as error:
        return FileResult(str(path), error.status, message=str(error))
    except Exception as error:  # a bug of ours: one line naming the file, never a traceback
        return _internal_error(path, error)
    fixes = _fix_results(plans, shape, select, ())
    status = PENDING if any(f.status == PENDING for f in fixes) else OK
    return with_breakage_note(FileResult(str(path), status, shape.layout, fixes), target, source, shape)


# ---------------------------------------------------------------- damaged by claude-mpm's own fix script


def _damage_report(path: Path, target: Path, damaged: bytes, damage: ScriptDamage) -> FileResult:
    """What check says about a damaged handler: that apply can rebuild it, or how to get the original back."""
    try:
        backup, _, shape = _pristine_backup(target, damaged, damage)
    except FileError as error:
        return FileResult(str(path), DAMAGED, message=str(error))
    remedy = f"`fix-memory-leaks apply` rebuilds it from {backup.name}, its pristine original"
    return FileResult(str(path), DAMAGED, shape.layout, message=f"{_cause(damage)}; {remedy}")


def _cause(damage: ScriptDamage) -> str:
    return f"damaged by {SCRIPT} ({damage})"


def _pristine_backup(target: Path, damaged: bytes, damage: ScriptDamage) -> tuple[Path, bytes, Shape]:
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
    version = claude_mpm_version(target) or "<version>"
    raise FileError(
        f"{_cause(damage)}, and {missing}: `pip install --force-reinstall claude-mpm=={version}` brings the "
        "original back, then run `fix-memory-leaks apply`; left untouched",
        DAMAGED,
    )


def _repair(path: Path, target: Path, damaged: bytes, damage: ScriptDamage, select, settings, dry_run) -> FileResult:
    """Start again from the pristine original the script left, fix that, and keep the damaged file too."""
    from codemods.engine import fix_source

    backup, pristine, _ = _pristine_backup(target, damaged, damage)
    outcome: Outcome = _judged(fix_source, pristine, select, settings)
    fixes = _fix_results(outcome.plans, outcome.shape, select, outcome.applied)
    result = FileResult(str(path), REPAIRED, outcome.shape.layout, fixes)
    if dry_run:
        result.diff = unified_diff(str(path), damaged, outcome.source)
        result.message = f"{_cause(damage)}; would be rebuilt from {backup.name}"
        return result
    saved, kept = write_repair(target, damaged, pristine, outcome.source)
    result.backup = str(saved)
    result.message = f"{_cause(damage)}; rebuilt from {backup.name}, the damaged file kept as {kept.name}"
    return result


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
        return FileResult(str(path), error.status, message=str(error))
    except Exception as error:  # write_patch has already put the original back
        return _internal_error(path, error)


def _internal_error(path: Path, error: Exception) -> FileResult:
    return FileResult(
        str(path),
        ERROR,
        message=f"internal error ({type(error).__name__}: {error}); the file is unchanged, please report this file",
    )


def _apply_locked(path: Path, target: Path, select, settings: Settings, dry_run: bool) -> FileResult:
    from codemods.engine import fix_source

    original = read_source(target)
    try:
        outcome: Outcome = _judged(fix_source, original, select, settings)
    except ScriptDamage as damage:
        return _repair(path, target, original, damage, select, settings, dry_run)
    fixes = _fix_results(outcome.plans, outcome.shape, select, outcome.applied)
    result = FileResult(str(path), _apply_status(outcome, fixes), outcome.shape.layout, fixes)
    if not outcome.changed:
        return with_breakage_note(result, target, original, outcome.shape)
    if dry_run:
        result.diff = unified_diff(str(path), original, outcome.source)
        return result
    result.backup = write_patch(target, original, outcome.source, ours=bool(outcome.shape.marks))
    return result


def _apply_status(outcome: Outcome, fixes: Sequence[FixResult]) -> str:
    if outcome.applied:
        return PATCHED
    if outcome.shape.upstream_fixed or any(f.status == PRESENT for f in fixes):
        return ALREADY_FIXED
    return NOT_APPLICABLE


def write_patch(target: Path, original: bytes, patched: bytes, ours: bool) -> str:
    """Back up, replace atomically, verify; on any failure put the original back and raise FileError."""
    # A partial patch of ours already has its pristine original saved; if that backup is gone, save what we have.
    existing = newest_backup(target) if ours else None
    saved = _replace_keeping(target, original, patched, [] if existing else [(original, BACKUP_SUFFIX)])
    return str(existing or saved[0])


def write_repair(target: Path, damaged: bytes, pristine: bytes, repaired: bytes) -> tuple[Path, Path]:
    """Replace a damaged handler by its repair, as ``write_patch`` does; returns (backup, kept damaged file).

    The pristine original becomes the newest backup (what ``restore`` puts back), and the damaged
    file is kept byte for byte as ``.damaged``: nothing that was in the folder is lost."""
    backup, kept = _replace_keeping(target, damaged, repaired, [(pristine, BACKUP_SUFFIX), (damaged, DAMAGED_SUFFIX)])
    return backup, kept


def _replace_keeping(target: Path, original: bytes, patched: bytes, copies) -> list[Path]:
    """Save each ``(data, suffix)`` copy beside the file, replace it atomically and verify; returns the copies.

    On any failure the original is put back, the copies this call created are removed, and FileError is raised."""
    mode = _stat(target)
    if target.read_bytes() != original:  # compare-and-swap: someone else wrote it since we read it
        raise FileError("the file changed while it was being patched; nothing was written, run apply again")
    _remove_stale_temporaries(target)
    saved: list[Path] = []
    created: list[Path] = []
    try:
        for data, suffix in copies:
            copy, made = ensure_backup(target, data, suffix)
            saved.append(copy)
            if made:
                created.append(copy)
        atomic_write(target, patched, mode)
        verify_written(target, patched)
    except BaseException as error:
        _roll_back(target, original, mode, created)
        if isinstance(error, (OSError, VerificationError)):
            raise FileError(f"{_describe(error)}; the original is back in place") from None
        raise
    return saved


def _remove_stale_temporaries(target: Path) -> None:
    """Temp files of ours (``.NAME.XXXX.tmp``, for the file or its backup) left by a run that was killed.

    Only called under the folder lock: no live run of ours can own one now."""
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        with suppress(OSError):
            stale.unlink()


def _roll_back(target: Path, original: bytes, mode, created: Sequence[Path]) -> None:
    try:
        if target.read_bytes() != original:
            atomic_write(target, original, mode)
    except FileNotFoundError:
        atomic_write(target, original, mode)
    for copy in created:
        copy.unlink()


def verify_written(target: Path, patched: bytes) -> None:
    """Re-read the file: it must be exactly what we meant to write, and compile."""
    if target.read_bytes() != patched:
        raise VerificationError("the file on disk differs from the patched text after writing")
    try:
        compile(patched, str(target), "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as error:
        raise VerificationError(f"the written file does not compile: {error}") from None


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError):
        where = f" ({error.filename})" if error.filename else ""
        return f"write failed: {error.strerror or error}{where}"
    return f"verification failed: {error}"


def _stat(path: Path):
    status = path.stat()
    return status.st_mode & 0o7777, status.st_uid, status.st_gid


def atomic_write(target: Path, data: bytes, mode) -> None:
    """Temp file in the same folder, flushed and fsynced, then ``os.replace``: never a half-written target."""
    with _complete_temporary(target, data, mode) as temporary:
        os.replace(temporary, target)
    _fsync_folder(target.parent)


@contextmanager
def _complete_temporary(final: Path, data: bytes, mode):
    """A fully written, fsynced temp file beside ``final``, with its mode; gone afterwards unless moved."""
    permissions, uid, gid = mode
    try:
        descriptor, temporary = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp")
    except OSError as error:
        raise FileError(f"cannot write into {final.parent}: {error.strerror or error}") from None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, permissions)
        if hasattr(os, "chown") and (uid, gid) != (os.getuid(), os.getgid()):
            with suppress(PermissionError):
                os.chown(temporary, uid, gid)
        yield temporary
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


@contextmanager
def folder_lock(folder: Path):
    """Serialise runs on one folder (two ``apply`` at once end with one clean patch)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError as error:
        raise FileError(f"cannot open the folder {folder}: {error.strerror or error}") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


# ---------------------------------------------------------------- backups


def backups(target: Path, suffix: str = BACKUP_SUFFIX) -> list[Path]:
    """Existing backups of ``target``, oldest first: ``.backup``, ``.backup.1``, ``.backup.2``, ...

    (or its copies with another ``suffix``, such as the kept ``.damaged`` files)"""
    pattern = re.compile(re.escape(target.name + suffix) + r"(?:\.(\d+))?$")
    numbered: list[tuple[int, Path]] = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return []
    for name in names:
        match = pattern.match(name)
        if match:
            numbered.append((int(match.group(1) or 0), target.parent / name))
    return [path for _, path in sorted(numbered)]


def newest_backup(target: Path) -> Path | None:
    existing = backups(target)
    return existing[-1] if existing else None


def ensure_backup(target: Path, original: bytes, suffix: str = BACKUP_SUFFIX) -> tuple[Path, bool]:
    """A byte-identical backup of the pristine original (or a copy with another ``suffix``); never overwrites
    another one. Returns (path, created)."""
    existing = backups(target, suffix)
    if existing and existing[-1].read_bytes() == original:
        return existing[-1], False
    number = 0
    if existing:
        last = existing[-1].name[len(target.name + suffix) :]
        number = int(last[1:] or 0) + 1
    backup = target.with_name(target.name + suffix + (f".{number}" if number else ""))
    try:
        with _complete_temporary(backup, original, _stat(target)) as temporary:
            os.link(temporary, backup)  # fails rather than overwrite a backup that appeared meanwhile
    except OSError as error:
        raise FileError(f"cannot write the backup {backup}: {error.strerror or error}") from None
    return backup, True


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
                atomic_write(target, pristine, _stat(target) if target.exists() else _stat(backup))
    except FileError as error:
        return FileResult(str(path), error.status, message=str(error))
    except OSError as error:
        return FileResult(str(path), ERROR, message=f"restore failed: {error.strerror or error}")
    except Exception as error:
        return _internal_error(path, error)
    message = "restored" if current != pristine else "already identical to the backup"
    return FileResult(str(path), RESTORED, message=f"{message} from {backup}", backup=str(backup))


# ---------------------------------------------------------------- diff


def unified_diff(display: str, before: bytes, after: bytes) -> str:
    encoding = _encoding(before)
    old = before.decode(encoding).splitlines(keepends=True)
    new = after.decode(encoding).splitlines(keepends=True)
    name = display.lstrip("/")
    lines = difflib.unified_diff(old, new, fromfile=f"a/{name}", tofile=f"b/{name}")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
