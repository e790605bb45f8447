"""Handlers damaged by claude-mpm's own fix_memory_leaks.py (issue 10): never ok, repaired from the backup it left.

``tests/damage.py`` makes that script's kinds of edits. Every pre-fix release goes through it, with and
without the pristine ``.backup`` the script leaves, and then through the command line as a user would
run it: ``check`` fails the gate, ``apply`` rebuilds the file from its original and loses nothing, or,
without a usable original, says how to get it back and leaves the folder as it was.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import corpus
from codemods.damage import ScriptDamage, inspect_refusing_damage, original_of
from codemods.engine import VerificationError, fix_source
from fixer import pipeline, safe_write
from fixer.cli import main
from tests.damage import COMPILES, UNEXPECTED_INDENT, damage, natural_kind, run_script
from tests.helpers import HANDLER_TAIL, make_handler, new_undefined_names, snapshot

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "script-damaged-3.4"
OTHER_KIND = {COMPILES: UNEXPECTED_INDENT, UNEXPECTED_INDENT: COMPILES}


def backup_of(handler: Path, suffix: str = ".backup") -> Path:
    return handler.with_name(handler.name + suffix)


def damaged_install(root: Path, version: str, kind=None, keep_backup: bool = True) -> Path:
    """claude-mpm ``version`` installed under ``root`` (with its dist-info), then the script run on it."""
    site = root / version / "site-packages"
    handler = make_handler(site, corpus.handler(version))
    (site / f"claude_mpm-{version}.dist-info").mkdir()
    backup = run_script(handler, kind)
    if not keep_backup:
        backup.unlink()
    return handler


def json_files(capsys):
    """``--format json`` output: (file entries by release, the folder each was installed under; summary)."""
    document = json.loads(capsys.readouterr().out)
    return {Path(entry["path"]).parts[-6]: entry for entry in document["files"]}, document["summary"]


@pytest.fixture(scope="module")
def distinct(releases):
    """One release of each distinct pre-fix handler (several releases ship the same file)."""
    first = {}
    for version in corpus.PRE_FIX:
        first.setdefault(releases[version].read_bytes(), version)
    return list(first.values())


@pytest.fixture(scope="module")
def repaired_reference(releases):
    """What a repair must produce: ``fix_source`` of the pristine original (computed once per content)."""
    known = {}

    def reference(version: str) -> bytes:
        pristine = corpus.handler(version)
        if pristine not in known:
            known[pristine] = fix_source(pristine).source
        return known[pristine]

    return reference


# ---------------------------------------------------------------- telling damage from upstream's fix


@pytest.mark.corpus
def test_the_model_breaks_the_releases_as_the_script_does(releases, distinct):
    """3.0-3.4 (26 releases) still compile, with the reported new undefined names; 3.5-3.9.2 (13) end with
    an unexpected indent."""
    outcomes = {}
    for version in corpus.PRE_FIX:
        try:
            compile(damage(releases[version].read_bytes()), version, "exec", dont_inherit=True)
            outcomes[version] = COMPILES
        except SyntaxError as error:
            outcomes[version] = error.msg
    first_unparsable = corpus.PRE_FIX.index("3.5.0")
    assert {outcomes[version] for version in corpus.PRE_FIX[:first_unparsable]} == {COMPILES}
    assert {outcomes[version] for version in corpus.PRE_FIX[first_unparsable:]} == {"unexpected indent"}
    for version in distinct:
        pristine = releases[version].read_bytes()
        if natural_kind(pristine) == COMPILES:
            expected = {"NetworkConfig", "time"} | (
                {"SOCKETIO_AVAILABLE", "socketio", "threading"} if version.startswith(("3.0.", "3.1.")) else set()
            )
            assert new_undefined_names(pristine, damage(pristine)) == expected, version


@pytest.mark.corpus
def test_upstream_fixed_releases_are_not_mistaken_for_damage(releases):
    for version in corpus.FIXED_UPSTREAM:
        assert inspect_refusing_damage(releases[version].read_bytes()).upstream_fixed, version


@pytest.mark.corpus
@pytest.mark.parametrize("kind", [COMPILES, UNEXPECTED_INDENT])
def test_either_kind_of_damage_is_recognised_on_every_layout(kind, distinct):
    for version in distinct:
        with pytest.raises(ScriptDamage) as raised:
            inspect_refusing_damage(damage(corpus.handler(version), kind))
        expected = "unexpected indent" if kind == UNEXPECTED_INDENT else "_cleanup_old_entries() is never called"
        assert expected in str(raised.value), (version, str(raised.value))


@pytest.mark.corpus
def test_a_backup_is_the_original_of_its_own_release_only(distinct):
    """The original of another release (a backup left from before an upgrade) is never taken for this one's."""
    for damaged_version in distinct:
        damaged = damage(corpus.handler(damaged_version))
        for candidate in distinct:
            found = original_of(damaged, corpus.handler(candidate)) is not None
            assert found == (candidate == damaged_version), (candidate, damaged_version)
        for fixed in ("3.9.4", "4.5.0"):
            assert original_of(damaged, corpus.handler(fixed)) is None


# ---------------------------------------------------------------- every release, through the command line


@pytest.mark.corpus
def test_check_fails_the_gate_on_every_damaged_release(tmp_path, capsys, releases):
    for version in corpus.PRE_FIX:
        damaged_install(tmp_path / "with-backup", version)
        damaged_install(tmp_path / "without-backup", version, keep_backup=False)
    before = snapshot(tmp_path)

    for folder in ("with-backup", "without-backup"):
        assert main(["check", str(tmp_path / folder), "--format", "json"]) == 2
        files, summary = json_files(capsys)
        assert summary == {"damaged": len(corpus.PRE_FIX)}
        for version, entry in files.items():
            message = entry["message"]
            assert entry["status"] == "damaged" and "damaged by claude-mpm's fix_memory_leaks.py" in message
            if natural_kind(corpus.handler(version)) == UNEXPECTED_INDENT:
                assert "unexpected indent" in message
            if folder == "with-backup":
                assert "`fix-memory-leaks apply` rebuilds it from hook_handler.py.backup" in message
                assert entry["layout"] == inspect_refusing_damage(corpus.handler(version)).layout
            else:
                assert f"`pip install --force-reinstall claude-mpm=={version}`" in message

    assert main(["check", str(tmp_path / "without-backup"), "--format", "github"]) == 2
    annotations = [line for line in capsys.readouterr().out.splitlines() if line.startswith("::error ")]
    assert len(annotations) == len(corpus.PRE_FIX)
    assert all(",title=fix-memory-leaks damaged::damaged by claude-mpm" in line for line in annotations)
    assert snapshot(tmp_path) == before


@pytest.mark.corpus
def test_apply_without_a_usable_backup_says_how_to_get_the_original_back(tmp_path, capsys, releases):
    for version in corpus.PRE_FIX:
        damaged_install(tmp_path, version, keep_backup=False)
    before = snapshot(tmp_path)

    assert main(["apply", str(tmp_path)]) == 2

    assert snapshot(tmp_path) == before
    lines = capsys.readouterr().err.splitlines()
    for version in corpus.PRE_FIX:
        handler = tmp_path / version / "site-packages" / HANDLER_TAIL
        (line,) = [line for line in lines if str(handler) in line]
        assert line.startswith(f"damaged: {handler}: damaged by claude-mpm's fix_memory_leaks.py")
        assert f"no hook_handler.py.backup beside it: `pip install --force-reinstall claude-mpm=={version}`" in line
    assert lines[-1].startswith(f"apply: {len(corpus.PRE_FIX)} damaged")


@pytest.mark.corpus
def test_apply_repairs_every_damaged_release_and_loses_nothing(tmp_path, capsys, releases, repaired_reference):
    handlers = {version: damaged_install(tmp_path, version) for version in corpus.PRE_FIX}
    damaged = {version: handler.read_bytes() for version, handler in handlers.items()}

    assert main(["apply", str(tmp_path), "--format", "json"]) == 0
    files, summary = json_files(capsys)
    assert summary == {"repaired": len(corpus.PRE_FIX)}
    for version, handler in handlers.items():
        assert handler.read_bytes() == repaired_reference(version), version
        assert backup_of(handler).read_bytes() == corpus.handler(version)
        assert backup_of(handler, ".damaged").read_bytes() == damaged[version]
        assert sorted(p.name for p in handler.parent.iterdir()) == [
            "hook_handler.py",
            "hook_handler.py.backup",
            "hook_handler.py.damaged",
        ]
        assert files[version]["backup"] == str(backup_of(handler))
        assert {fix["status"] for fix in files[version]["fixes"]} <= {"applied", "not-applicable"}
    repaired = snapshot(tmp_path)

    assert main(["apply", str(tmp_path), "--format", "json"]) == 0  # a second run is a no-op
    assert json_files(capsys)[1] == {"already-fixed": len(corpus.PRE_FIX)}
    assert snapshot(tmp_path) == repaired

    assert main(["restore", str(tmp_path)]) == 0  # the pristine original, not the damaged file
    for version, handler in handlers.items():
        assert handler.read_bytes() == corpus.handler(version)
        assert backup_of(handler, ".damaged").read_bytes() == damaged[version]


@pytest.mark.corpus
def test_dry_run_shows_the_repair_and_writes_nothing(tmp_path, capsys, distinct, repaired_reference):
    handlers = {version: damaged_install(tmp_path, version) for version in distinct}
    before = snapshot(tmp_path)

    assert main(["apply", "--dry-run", str(tmp_path)]) == 0

    assert snapshot(tmp_path) == before
    out, err = capsys.readouterr()
    for version, handler in handlers.items():
        assert pipeline.unified_diff(str(handler), handler.read_bytes(), repaired_reference(version)) in out
        assert f"{handler}: would be repaired (dry run)" in err
    assert "run again without --dry-run to write it" in err


@pytest.mark.corpus
def test_the_other_kind_of_damage_is_repaired_too(tmp_path, capsys, distinct, repaired_reference):
    """Each layout damaged the way the script damages the others: a compiling 3.5+, an unparsable 3.0-3.4."""
    handlers = {}
    for version in distinct:
        kind = OTHER_KIND[natural_kind(corpus.handler(version))]
        handlers[version] = damaged_install(tmp_path / "repairable", version, kind)
        damaged_install(tmp_path / "no-backup", version, kind, keep_backup=False)
    unrepairable = snapshot(tmp_path / "no-backup")

    assert main(["apply", str(tmp_path / "no-backup")]) == 2
    assert snapshot(tmp_path / "no-backup") == unrepairable
    assert main(["apply", str(tmp_path / "repairable"), "--format", "json"]) == 0
    assert json_files(capsys)[1] == {"repaired": len(distinct)}
    for version, handler in handlers.items():
        assert handler.read_bytes() == repaired_reference(version)


# ---------------------------------------------------------------- backups that are not, or not only, the original


@pytest.mark.corpus
def test_a_backup_left_from_an_older_release_is_not_used(tmp_path, capsys, releases):
    """The script run on 3.3.2, claude-mpm upgraded to 3.4.0, the script run again: its backup is still 3.3.2's."""
    handler = damaged_install(tmp_path, "3.3.2")
    site = handler.parents[3]
    handler.write_bytes(corpus.handler("3.4.0"))  # what pip install -U does (it knows nothing of .backup)
    (site / "claude_mpm-3.3.2.dist-info").rename(site / "claude_mpm-3.4.0.dist-info")
    run_script(handler)
    before = snapshot(tmp_path)

    assert main(["check", str(handler)]) == 2
    assert main(["apply", str(handler)]) == 2

    assert snapshot(tmp_path) == before
    err = capsys.readouterr().err
    assert "hook_handler.py.backup is not its pristine original" in err
    assert "`pip install --force-reinstall claude-mpm==3.4.0` brings the original back" in err


@pytest.mark.corpus
def test_the_original_found_in_an_older_backup_is_what_restore_puts_back(tmp_path, releases, repaired_reference):
    handler = damaged_install(tmp_path, "3.2.1")
    other = b"# a backup of something else, newer than the script's\n"
    backup_of(handler, ".backup.1").write_bytes(other)

    assert main(["apply", str(handler)]) == 0

    assert handler.read_bytes() == repaired_reference("3.2.1")
    assert backup_of(handler, ".backup.1").read_bytes() == other
    assert backup_of(handler, ".backup.2").read_bytes() == corpus.handler("3.2.1")
    assert main(["restore", str(handler)]) == 0 and handler.read_bytes() == corpus.handler("3.2.1")


# ---------------------------------------------------------------- the hand-written fixture


@pytest.fixture
def fixture_handler(tmp_path):
    """A copy of the hand-written damaged handler and the pristine backup beside it."""
    shutil.copytree(FIXTURE, tmp_path / "site-packages")
    return tmp_path / "site-packages" / HANDLER_TAIL


def test_fixture_is_repaired_from_its_backup(fixture_handler, capsys):
    damaged, pristine = fixture_handler.read_bytes(), backup_of(fixture_handler).read_bytes()
    assert main(["check", str(fixture_handler)]) == 2
    assert "undefined names NetworkConfig, time" in capsys.readouterr().err

    assert main(["apply", str(fixture_handler)]) == 0

    assert fixture_handler.read_bytes() == fix_source(pristine).source
    assert backup_of(fixture_handler).read_bytes() == pristine
    assert backup_of(fixture_handler, ".damaged").read_bytes() == damaged
    err = capsys.readouterr().err
    assert "repaired" in err and "the damaged file kept as hook_handler.py.damaged" in err
    assert main(["check", str(fixture_handler)]) == 0
    assert main(["restore", str(fixture_handler)]) == 0 and fixture_handler.read_bytes() == pristine


def test_check_of_a_damaged_handler_never_imports_libcst(fixture_handler):
    """Telling damage apart and checking the backup is standard-library work, like the rest of check."""
    code = "import sys; from fixer.cli import main; main(['check', sys.argv[1]]); print('libcst' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code, str(fixture_handler)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=60,
    )
    assert result.stdout.strip() == "False", result.stderr
    assert "damaged: " in result.stderr


def test_fixture_without_its_backup_names_a_placeholder_version(fixture_handler, capsys):
    backup_of(fixture_handler).unlink()
    before = snapshot(fixture_handler.parent)

    assert main(["apply", str(fixture_handler)]) == 2

    assert snapshot(fixture_handler.parent) == before
    (line,) = [line for line in capsys.readouterr().err.splitlines() if str(fixture_handler) in line]
    assert "`pip install --force-reinstall claude-mpm==<version>` brings the original back" in line


def test_damage_that_breaks_the_file_anywhere_is_recognised(fixture_handler, capsys):
    """Even broken among the lines the script pastes above the handler class, the file is repaired."""
    pristine = backup_of(fixture_handler).read_bytes()
    damaged = fixture_handler.read_bytes().replace(b"_handler_lock = threading.Lock()\n", b"_handler_lock = (\n", 1)
    fixture_handler.write_bytes(damaged)

    assert main(["check", str(fixture_handler)]) == 2
    assert "damaged by claude-mpm's fix_memory_leaks.py (does not parse: line" in capsys.readouterr().err
    assert main(["apply", str(fixture_handler)]) == 0
    assert fixture_handler.read_bytes() == fix_source(pristine).source


def test_an_unparsable_file_without_the_scripts_lines_is_a_plain_parse_error(fixture_handler, capsys):
    """A typo in a pristine handler, with that handler's backup beside it, is not the script's doing."""
    typo = backup_of(fixture_handler).read_bytes().replace(b"def main():", b"def main(:", 1)
    fixture_handler.write_bytes(typo)

    assert main(["apply", str(fixture_handler)]) == 2

    assert fixture_handler.read_bytes() == typo
    assert f"error: {fixture_handler}: does not parse as Python (line" in capsys.readouterr().err


def test_a_failed_repair_puts_everything_back(fixture_handler, monkeypatch, capsys):
    before = snapshot(fixture_handler.parent)

    def corrupted(target, patched):
        raise VerificationError("the file on disk differs from the patched text after writing")

    monkeypatch.setattr(safe_write, "verify_written", corrupted)
    assert main(["apply", str(fixture_handler)]) == 2

    assert snapshot(fixture_handler.parent) == before  # no .damaged, no new backup, the damaged file as it was
    assert "the original is back in place" in capsys.readouterr().err


def test_damaged_again_after_a_restore_keeps_both_damaged_files(fixture_handler):
    """Repair, restore, the script run again with another outcome: the earlier damaged file is not overwritten."""
    first = fixture_handler.read_bytes()
    assert main(["apply", str(fixture_handler)]) == 0
    assert main(["restore", str(fixture_handler)]) == 0
    run_script(fixture_handler, UNEXPECTED_INDENT)
    second = fixture_handler.read_bytes()

    assert main(["apply", str(fixture_handler)]) == 0

    assert backup_of(fixture_handler, ".damaged").read_bytes() == first
    assert backup_of(fixture_handler, ".damaged.1").read_bytes() == second


@pytest.mark.parametrize("command", ["check", "apply"])
def test_help_gives_the_exit_code_of_a_damaged_handler(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "2 an error" in text and "or a handler damaged by claude-mpm's fix_memory_leaks.py (check;" in text
