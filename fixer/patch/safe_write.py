"""Writing a handler so that it is always either its original or fully patched.

The atomic replace (temp file in the same folder, fsync, ``os.replace``), the folder lock,
the naming of backups (``.backup``, ``.backup.1``, ...), the re-read after writing and the
roll-back. No decisions about what to write: ``pipeline`` brings the bytes.
"""

from __future__ import annotations

import glob
import os
import re
import tempfile
from collections.abc import Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from codemods.engine import VerificationError

from .results import FileError

BACKUP_SUFFIX = ".backup"
DAMAGED_SUFFIX = ".damaged"  # a damaged handler, kept beside its repair; never a backup restore would put back


def write_patch(target: Path, original: bytes, patched: bytes, ours: bool) -> str:
    """Back up, replace atomically, verify; on any failure put the original back and raise FileError."""
    # A partial patch of ours already has its pristine original saved; if that backup is gone, save what we have.
    existing = newest_backup(target) if ours else None
    saved = replace_keeping(target, original, patched, [] if existing else [(original, BACKUP_SUFFIX)])
    return str(existing or saved[0])


def write_repair(target: Path, damaged: bytes, pristine: bytes, repaired: bytes) -> tuple[Path, Path]:
    """Replace a damaged handler by its repair, as ``write_patch`` does; returns (backup, kept damaged file).

    The pristine original becomes the newest backup (what ``restore`` puts back), and the damaged
    file is kept byte for byte as ``.damaged``: nothing that was in the folder is lost."""
    backup, kept = replace_keeping(target, damaged, repaired, [(pristine, BACKUP_SUFFIX), (damaged, DAMAGED_SUFFIX)])
    return backup, kept


def replace_keeping(target: Path, original: bytes, patched: bytes, copies) -> list[Path]:
    """Save each ``(data, suffix)`` copy beside the file, replace it atomically and verify; returns the copies.

    On any failure the original is put back, the copies this call created are removed, and FileError is raised."""
    mode = file_mode(target)
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


def file_mode(path: Path):
    """What a replacement must keep: permission bits, owner and group."""
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
        with _complete_temporary(backup, original, file_mode(target)) as temporary:
            os.link(temporary, backup)  # fails rather than overwrite a backup that appeared meanwhile
    except OSError as error:
        raise FileError(f"cannot write the backup {backup}: {error.strerror or error}") from None
    return backup, True
