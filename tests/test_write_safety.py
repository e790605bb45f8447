"""The original is never lost: backups, atomic replace, symlinks, concurrent runs, interruptions, rollback.

Every test ends by looking at the whole folder: the handler is either its original or fully patched,
its pristine original is recoverable, and nothing else (temp files, stray backups) is left behind.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from collections import Counter
from pathlib import Path

import pytest

from bench import corpus
from codemods.engine import VerificationError, assess, fix_source
from codemods.status import FixStatus
from fixer.cli import main
from fixer.patch import safe_write
from tests.helpers import (
    BOM,
    assert_no_duplicates,
    line_endings,
    make_handler,
    reindent,
    snapshot,
    spawn_cli,
    stray_files,
    to_crlf,
    with_bom,
)

ROOT = Path(__file__).resolve().parent.parent
RELEASE = "3.2.1"  # small and has every fix pending: fast, and every write path is exercised


@pytest.fixture
def pristine(tmp_path, monkeypatch):
    """A pristine release handler in a claude-mpm tree under tmp_path (also the cwd: no config found)."""
    try:
        source = corpus.handler(RELEASE)
    except corpus.CorpusUnavailable as error:
        pytest.skip(f"real releases unavailable: {error}")
    monkeypatch.chdir(tmp_path)
    return make_handler(tmp_path, source)


def apply(path: Path, *extra: str) -> int:
    """``fix-memory-leaks apply PATH`` in this process (so steps can be monkeypatched)."""
    return main(["apply", str(path), "--no-color", *extra])


def reference(source: bytes) -> bytes:
    return fix_source(source).source


def backup_of(handler: Path, number: int = 0) -> Path:
    return handler.with_name(handler.name + ".backup" + (f".{number}" if number else ""))


# ---------------------------------------------------------------- backups and restore


@pytest.mark.parametrize("mode", [0o644, 0o600, 0o640, 0o755])
def test_backup_is_byte_identical_and_modes_are_kept(pristine, mode):
    """The backup holds the original byte for byte; backup and patched file keep the original's mode."""
    os.chmod(pristine, mode)
    original = pristine.read_bytes()

    assert apply(pristine) == 0

    assert backup_of(pristine).read_bytes() == original
    assert stat.S_IMODE(os.stat(backup_of(pristine)).st_mode) == mode
    assert stat.S_IMODE(os.stat(pristine).st_mode) == mode
    assert pristine.read_bytes() == reference(original)
    assert stray_files(pristine.parent) == []


def test_existing_backup_with_other_content_is_kept(pristine):
    """A backup of another release is never overwritten: ``.backup.1`` is written, and restore uses it."""
    older = corpus.handler("3.0.0")
    backup_of(pristine).write_bytes(older)
    original = pristine.read_bytes()

    assert apply(pristine) == 0
    assert apply(pristine) == 0  # a second run neither patches again nor backs up again

    assert backup_of(pristine).read_bytes() == older
    assert backup_of(pristine, 1).read_bytes() == original
    assert not backup_of(pristine, 2).exists()
    assert main(["restore", str(pristine)]) == 0
    assert pristine.read_bytes() == original
    assert backup_of(pristine).read_bytes() == older and backup_of(pristine, 1).read_bytes() == original


def test_restore_puts_the_newest_backup_back_and_keeps_it(pristine):
    """Patch, restore: the original, byte for byte; the backup stays; restoring again changes nothing."""
    original = pristine.read_bytes()
    assert apply(pristine) == 0
    assert pristine.read_bytes() != original

    assert main(["restore", str(pristine)]) == 0
    assert pristine.read_bytes() == original
    assert backup_of(pristine).read_bytes() == original
    assert main(["restore", str(pristine)]) == 0
    assert sorted(os.listdir(pristine.parent)) == ["hook_handler.py", "hook_handler.py.backup"]


def test_partial_patch_whose_backup_was_deleted_gets_one(pristine):
    """A file carrying our marks normally has its backup already; if it was deleted, the file is not
    replaced without a new one (of the partially patched text, the state before this run)."""
    assert apply(pristine, "--select", "singleton") == 0
    partial = pristine.read_bytes()
    backup_of(pristine).unlink()

    assert apply(pristine) == 0

    assert backup_of(pristine).read_bytes() == partial
    assert main(["restore", str(pristine)]) == 0
    assert pristine.read_bytes() == partial


# ---------------------------------------------------------------- atomic replace


def test_replace_is_atomic_from_a_synced_temp_file_in_the_same_folder(pristine, monkeypatch):
    """The handler is swapped in one ``os.replace`` of a complete, fsynced temp file next to it."""
    os.chmod(pristine, 0o640)
    original = pristine.read_bytes()
    inode_before = os.stat(pristine).st_ino
    synced, replaced = set(), []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        real_fsync(fd)
        synced.add(os.fstat(fd).st_ino)

    def replace(source, destination):
        replaced.append((Path(source), Path(destination), os.stat(source).st_ino, Path(source).read_bytes()))
        real_replace(source, destination)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    assert apply(pristine) == 0

    ((source, destination, inode, data),) = replaced
    assert destination == pristine and source.parent == pristine.parent and source != pristine
    assert inode in synced, "the temp file was not fsynced before the replace"
    assert data == reference(original) == pristine.read_bytes()
    assert os.stat(pristine).st_ino != inode_before  # a new file took its place: never written in place
    assert stat.S_IMODE(os.stat(pristine).st_mode) == 0o640
    assert stray_files(pristine.parent) == []


def test_symlinked_handler_stays_a_symlink_and_its_target_is_patched(tmp_path, pristine):
    """The link is kept; the file it points to is patched, backed up next to itself, and restored."""
    store = tmp_path / "store"
    store.mkdir()
    target = store / "hook_handler.py"
    os.replace(pristine, target)
    pristine.symlink_to(target)
    original = target.read_bytes()
    link_folder_before = sorted(os.listdir(pristine.parent))

    assert apply(tmp_path / "claude_mpm") == 0  # found through the folder search, as a user would

    assert pristine.is_symlink() and os.readlink(pristine) == str(target)
    assert target.read_bytes() == reference(original)
    assert backup_of(target).read_bytes() == original
    assert sorted(os.listdir(pristine.parent)) == link_folder_before  # no backup next to the link
    assert main(["check", str(pristine)]) == 0
    assert main(["restore", str(pristine)]) == 0
    assert pristine.is_symlink() and target.read_bytes() == original and backup_of(target).exists()


# ---------------------------------------------------------------- concurrent runs


def test_concurrent_applies_end_with_one_clean_patch(tmp_path, pristine):
    """Six processes at once, via the file, its folder and a symlink, some with ``--select``: one patch,
    nothing twice, one backup (a run that patched only part is completed by a later full run)."""
    original = pristine.read_bytes()
    (tmp_path / "elsewhere").mkdir()
    link = tmp_path / "elsewhere" / "hook_handler.py"
    link.symlink_to(pristine)
    runs = [
        (pristine,),
        (tmp_path / "claude_mpm",),
        (link,),
        (pristine, "--select", "singleton"),
        (link, "--select", "limits"),
        (pristine,),
    ]
    processes = [spawn_cli("apply", str(path), *extra, "--format", "json", cwd=tmp_path) for path, *extra in runs]
    outputs = [process.communicate(timeout=120) for process in processes]

    assert [process.returncode for process in processes] == [0] * len(runs), [err for _, err in outputs]
    statuses = [json.loads(out)["files"][0]["status"] for out, _ in outputs]
    assert statuses.count("patched") >= 1 and set(statuses) <= {"patched", "already-fixed"}
    patched = pristine.read_bytes()
    assert_no_duplicates(patched)
    assert _code_lines(patched) == _code_lines(reference(original))
    assert all(plan.status != FixStatus.PENDING for plan in assess(patched)[1].values())
    assert sorted(os.listdir(pristine.parent)) == ["hook_handler.py", "hook_handler.py.backup"]
    assert backup_of(pristine).read_bytes() == original


SHARED_IMPORT = re.compile(rb"^(import \w+  # fix-memory-leaks): [\w-]+$")


def _code_lines(source: bytes) -> Counter:
    """The non-blank lines, counted: the same code whatever order the fixes were applied in.

    A module two fixes use (``threading``: the pool and the singleton) is imported once, marked with
    the fix whose run added it first; which one that is depends on the order, so that name is left out.
    """
    return Counter(SHARED_IMPORT.sub(rb"\1", line) for line in source.splitlines() if line.strip())


# ---------------------------------------------------------------- interruptions


class FileWithWrite:
    """A file object whose ``write`` is ``write(handle, data)``: how the tests meddle with the pipeline's writes."""

    def __init__(self, handle, write) -> None:
        self.handle, self._write = handle, write

    def write(self, data):
        return self._write(self.handle, data)

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


class Faults:
    """Counts every write step of a run (temp files, writes, fsyncs, chmods, links, replaces, the
    verification) and fails the ``fail_at``-th one; a failing write first writes half its data."""

    def __init__(self, monkeypatch, fail_at: int = 0, error: BaseException | None = None) -> None:
        self.steps, self.fail_at, self.error = [], fail_at, error
        real = {name: getattr(os, name) for name in ("fsync", "chmod", "link", "replace", "fdopen")}
        import tempfile

        real_mkstemp, real_verify = tempfile.mkstemp, safe_write.verify_written
        faults = self

        def write_or_fail_half_way(handle, data):
            faults.step("write", lambda: handle.write(data[: len(data) // 2]))
            return handle.write(data)

        def wrap(name, function):
            def step(*args, **kwargs):
                faults.step(name)
                return function(*args, **kwargs)

            return step

        for name in ("fsync", "chmod", "link", "replace"):
            monkeypatch.setattr(os, name, wrap(name, real[name]))
        monkeypatch.setattr(
            os, "fdopen", lambda *a, **k: FileWithWrite(real["fdopen"](*a, **k), write_or_fail_half_way)
        )
        monkeypatch.setattr(tempfile, "mkstemp", wrap("mkstemp", real_mkstemp))
        monkeypatch.setattr(safe_write, "verify_written", wrap("verify", real_verify))

    def step(self, name, before_failing=None):
        self.steps.append(name)
        if len(self.steps) == self.fail_at:
            if before_failing:
                before_failing()
            raise self.error


@pytest.mark.parametrize("error", [OSError(errno.EIO, "simulated I/O error"), KeyboardInterrupt()], ids=repr)
def test_interruption_at_every_step_leaves_original_or_full_patch(tmp_path, monkeypatch, error):
    """Fail each write step in turn: the file is always its original (folder as before) or fully
    patched (with its backup); never half-written, never a stray temp file."""
    original = corpus.handler(RELEASE)
    monkeypatch.chdir(tmp_path)
    with monkeypatch.context() as patch:
        counter = Faults(patch)
        assert apply(make_handler(tmp_path / "clean", original)) == 0
    steps = counter.steps
    assert {"mkstemp", "write", "fsync", "link", "replace", "verify"} <= set(steps), steps
    patched = reference(original)

    outcomes = []
    for fail_at, step in enumerate(steps, start=1):
        root = tmp_path / f"fail-{fail_at}-{step}"
        handler = make_handler(root, original)
        before = snapshot(root)
        with monkeypatch.context() as patch:
            Faults(patch, fail_at, error)
            code = apply(handler)
        content = handler.read_bytes()
        where = f"failing step {fail_at} ({step})"
        assert content in (original, patched), f"{where}: half-written file"
        assert stray_files(handler.parent) == [], where
        if content == original:
            assert snapshot(root) == before, f"{where}: the folder changed"
            assert code == (130 if isinstance(error, KeyboardInterrupt) else 2), where
        else:
            assert backup_of(handler).read_bytes() == original, where
            assert code == 0 and not isinstance(error, KeyboardInterrupt), where
        outcomes.append(content == original)
    assert any(outcomes), "no failure was ever felt: the faults were not injected"


KILLED_BEFORE_REPLACE = """
import os, signal, sys
os.replace = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
from fixer.cli import main
main(["apply", sys.argv[1]])
"""


def test_run_killed_before_the_replace_loses_nothing_and_is_cleaned_up(pristine):
    """kill -9 after the temp file is written, before it replaces the handler: the original is intact;
    the next run reuses the backup, removes the dead run's temp file, and patches."""
    import signal
    import subprocess
    import sys

    original = pristine.read_bytes()
    killed = subprocess.run([sys.executable, "-c", KILLED_BEFORE_REPLACE, str(pristine)], cwd=ROOT, capture_output=True)
    assert killed.returncode == -signal.SIGKILL
    assert pristine.read_bytes() == original
    assert stray_files(pristine.parent), "the kill should have left the temp file behind"

    assert apply(pristine) == 0

    assert pristine.read_bytes() == reference(original)
    assert sorted(os.listdir(pristine.parent)) == ["hook_handler.py", "hook_handler.py.backup"]
    assert backup_of(pristine).read_bytes() == original


def test_verification_failure_rolls_back(pristine, monkeypatch, capsys):
    """A written file that fails verification is replaced by the original again: exit 2, no backup left."""
    before = snapshot(pristine.parent)

    def fail(target, patched):
        raise VerificationError("simulated: the written file does not compile")

    monkeypatch.setattr(safe_write, "verify_written", fail)
    assert apply(pristine) == 2
    assert snapshot(pristine.parent) == before
    assert "the original is back in place" in capsys.readouterr().err


def test_silently_corrupted_write_is_caught_and_rolled_back(pristine, monkeypatch, capsys):
    """A disk that drops bytes without an error: verification reads the file back, sees it, rolls back."""
    original = pristine.read_bytes()
    before = snapshot(pristine.parent)
    real_fdopen = os.fdopen

    def truncate_the_patch(handle, data):
        return handle.write(data if data == original else data[:-100])

    monkeypatch.setattr(os, "fdopen", lambda *a, **k: FileWithWrite(real_fdopen(*a, **k), truncate_the_patch))
    assert apply(pristine) == 2
    assert snapshot(pristine.parent) == before
    assert "differs from the patched text" in capsys.readouterr().err


def test_patch_that_fails_the_cores_verification_is_never_written(pristine, monkeypatch, capsys):
    """The core compiles and re-inspects its output before anything is written."""
    import codemods.engine

    before = snapshot(pristine.parent)

    def fail(patched, fixes):
        raise VerificationError("simulated: fix connection-pool still has pending steps")

    monkeypatch.setattr(codemods.engine, "verify", fail)
    assert apply(pristine) == 2
    assert snapshot(pristine.parent) == before
    assert "nothing was written" in capsys.readouterr().err


def test_file_changed_by_someone_else_meanwhile_is_not_overwritten(pristine, monkeypatch, capsys):
    """Compare-and-swap: if another program rewrites the handler while we patch, we write nothing."""
    import codemods.engine

    theirs = b"# written by a pip upgrade meanwhile\n" + pristine.read_bytes()
    real_fix_source = codemods.engine.fix_or_diagnose

    def fix_then_interfere(*args, **kwargs):
        outcome = real_fix_source(*args, **kwargs)
        pristine.write_bytes(theirs)
        return outcome

    monkeypatch.setattr(codemods.engine, "fix_or_diagnose", fix_then_interfere)
    assert apply(pristine) == 2
    assert pristine.read_bytes() == theirs
    assert sorted(os.listdir(pristine.parent)) == ["hook_handler.py"]
    assert "changed while it was being patched" in capsys.readouterr().err


def test_internal_error_is_one_line_and_leaves_the_file(pristine, monkeypatch, capsys):
    """A bug of ours is reported like any refusal (exit 2, the file named), not as a traceback."""
    import codemods.engine

    before = snapshot(pristine.parent)

    def crash(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(codemods.engine, "fix_or_diagnose", crash)
    assert apply(pristine) == 2
    assert snapshot(pristine.parent) == before
    (line,) = [line for line in capsys.readouterr().err.splitlines() if str(pristine) in line]
    assert "internal error" in line and "simulated bug" in line


# ---------------------------------------------------------------- the whole corpus


CORPUS_VARIATIONS = {
    "crlf": to_crlf,
    "bom": with_bom,
    "indent-2-spaces": lambda source: reindent(source, "  "),
}


@pytest.mark.parametrize("variation", sorted(CORPUS_VARIATIONS))
def test_every_release_in_every_variation_is_patched_or_left_alone(releases, variation):
    """The pure core over the whole corpus: fixed releases byte-identical, the others patched completely,
    keeping their line endings and BOM."""
    vary = CORPUS_VARIATIONS[variation]
    for version in corpus.ALL_RELEASES:
        source = vary(releases[version].read_bytes())
        outcome = fix_source(source)
        if version in corpus.LEFT_ALONE:
            assert not outcome.changed and outcome.source == source, version
            continue
        assert outcome.changed, version
        compile(outcome.source, version, "exec", dont_inherit=True)
        assert line_endings(outcome.source) == line_endings(source), version
        assert outcome.source.startswith(BOM) == source.startswith(BOM), version
        assert all(plan.status != FixStatus.PENDING for plan in assess(outcome.source)[1].values()), version


def test_no_release_is_lost_through_apply_and_restore(releases, tmp_path, monkeypatch):
    """One ``apply`` over a tree holding every release (as shipped and CRLF+BOM), then ``restore``:
    every file is its original again, byte for byte; fixed releases were never touched nor backed up."""
    monkeypatch.chdir(tmp_path)
    originals = {}
    for version in corpus.ALL_RELEASES:
        shipped = releases[version].read_bytes()
        for name, source in (("shipped", shipped), ("crlf-bom", with_bom(to_crlf(shipped)))):
            originals[make_handler(tmp_path / name / version, source)] = source
    fixed = {path for path in originals if path.parts[-5] in corpus.LEFT_ALONE}

    assert main(["apply", str(tmp_path), "--quiet", "--jobs", "2"]) == 0
    for path, source in originals.items():
        assert (path.read_bytes() == source) == (path in fixed), path
        assert backup_of(path).exists() != (path in fixed), path
    patched = {path for path in originals if path not in fixed}
    assert main(["restore", *map(str, patched), "--quiet"]) == 0

    for path, source in originals.items():
        assert path.read_bytes() == source, path
        assert stray_files(path.parent) == [], path
