"""Handlers damaged by claude-mpm's own fix_memory_leaks.py (issues 10, 18): never ok, repaired from the backup it left.

The real script (``../shared/upstream``, run by ``tests/damage.py``) is run on every pre-fix release in
a checkout laid out as it expects, once per test session; the tests then work on copies of what it
left, through the command line as its user would: ``check`` fails the gate, ``apply`` (with the
script's own config, tuned) rebuilds each file from its original to exactly what ``apply`` makes of
the pristine release, ``restore`` puts the original back; without a backup, or with the backup of
another file, nothing is touched and the message says how to get the original back.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import corpus
from codemods.engine import VerificationError, fix_source
from codemods.fixes.registry import FIX_NAMES
from codemods.reading.damage import ScriptDamage, inspect_refusing_damage, original_of
from fixer.cli import main
from fixer.patch import pipeline, safe_write
from fixer.patch.config import load_config
from tests import damage as damage_module
from tests.damage import SCRIPT_CONFIG, SOURCE_TAIL, damaged_checkout, run_script, upstream_script
from tests.helpers import HANDLER_TAIL, snapshot

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "script-damaged-3.4"
TUNED = (b"max_delegation_tracking: 200", b"max_delegation_tracking: 150")


def backup_of(handler: Path, suffix: str = ".backup") -> Path:
    return handler.with_name(handler.name + suffix)


@pytest.fixture(scope="module")
def script_runs(releases, tmp_path_factory):
    """version -> the checkout the real script was run in (run once per release for the whole module)."""
    upstream_script()
    folder = tmp_path_factory.mktemp("script-runs")
    return {version: damaged_checkout(folder / version, corpus.handler(version)) for version in corpus.PRE_FIX}


@pytest.fixture(scope="module")
def distinct():
    """One release of each distinct pre-fix handler (several releases ship the same file)."""
    first = {}
    for version in corpus.PRE_FIX:
        first.setdefault(corpus.handler(version), version)
    return list(first.values())


def projects(folder: Path, script_runs, versions=corpus.PRE_FIX) -> dict[str, Path]:
    """Copies of the checkouts the script left (handler, .backup, its config, monitor_memory.sh): version -> handler."""
    for version in versions:
        shutil.copytree(script_runs[version].root, folder / version, symlinks=True)
    return {version: folder / version / SOURCE_TAIL for version in versions}


def json_files(capsys, folder: Path):
    """``--format json`` output: (file entries by the release folder under ``folder``, summary, config used)."""
    document = json.loads(capsys.readouterr().out)
    by_release = {Path(entry["path"]).resolve().relative_to(folder).parts[0]: entry for entry in document["files"]}
    return by_release, document["summary"], document["config"]


def another_release(version: str, distinct) -> str:
    """A release whose handler differs from ``version``'s: the next distinct one."""
    others = [other for other in distinct if corpus.handler(other) != corpus.handler(version)]
    return next((other for other in others if corpus.PRE_FIX.index(other) > corpus.PRE_FIX.index(version)), others[0])


# ---------------------------------------------------------------- what the script does, and telling it apart


@pytest.mark.parametrize(("ci", "outcome"), [("", pytest.skip.Exception), ("true", pytest.fail.Exception)])
def test_without_the_script_its_tests_skip_except_in_ci(monkeypatch, tmp_path, ci, outcome):
    monkeypatch.setattr(damage_module, "UPSTREAM_SCRIPT", tmp_path / "shared" / "upstream" / "fix_memory_leaks.py")
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match=r"fix_memory_leaks\.py not found"):
        damage_module.upstream_script()


@pytest.mark.corpus
def test_the_script_damages_every_pre_fix_release(script_runs):
    """3.0-3.4 (26 releases) still compile but are broken; 3.5-3.9.2 (13) end with an unexpected indent. Each
    keeps its pristine original as .backup, and gets the script's config and monitor script."""
    first_unparsable = corpus.PRE_FIX.index("3.5.0")
    for index, version in enumerate(corpus.PRE_FIX):
        run = script_runs[version]
        damaged = run.handler.read_bytes()
        assert run.backup.read_bytes() == corpus.handler(version) != damaged, version
        try:
            compile(damaged, version, "exec", dont_inherit=True)
            outcome = "compiles"
        except SyntaxError as error:
            outcome = error.msg
        assert outcome == ("compiles" if index < first_unparsable else "unexpected indent"), version
        with pytest.raises(ScriptDamage):
            inspect_refusing_damage(damaged)
        assert run.config.is_file() and (run.root / "scripts" / "monitor_memory.sh").is_file()


@pytest.mark.corpus
def test_upstream_rework_releases_are_not_mistaken_for_damage(releases):
    for version in corpus.FIXED_UPSTREAM:
        assert inspect_refusing_damage(releases[version].read_bytes()).carries_upstream_rework, version


@pytest.mark.corpus
def test_a_backup_is_the_original_of_its_own_release_only(script_runs, distinct):
    """The original of another release (a backup left from before an upgrade), or of the same release edited
    since, is never taken for this one's."""
    for damaged_version in distinct:
        damaged = script_runs[damaged_version].handler.read_bytes()
        for candidate in distinct:
            found = original_of(damaged, corpus.handler(candidate)) is not None
            assert found == (candidate == damaged_version), (candidate, damaged_version)
        for fixed in ("3.9.4", "4.5.0"):
            assert original_of(damaged, corpus.handler(fixed)) is None
        pristine = corpus.handler(damaged_version)
        middle = pristine.index(b"\n    def ", len(pristine) // 2) + 1
        edited = pristine[:middle] + b"    # a line the original does not have\n" + pristine[middle:]
        assert original_of(damaged, edited) is None, damaged_version


# ---------------------------------------------------------------- every release, through the command line


@pytest.mark.corpus
def test_check_fails_the_gate_on_every_damaged_release(tmp_path, capsys, script_runs):
    handlers = projects(tmp_path / "with-backup", script_runs)
    for handler in projects(tmp_path / "without-backup", script_runs).values():
        backup_of(handler).unlink()
    before = snapshot(tmp_path)

    for folder in ("with-backup", "without-backup"):
        assert main(["check", str(tmp_path / folder), "--format", "json"]) == 2
        files, summary, _ = json_files(capsys, tmp_path / folder)
        assert summary == {"damaged": len(corpus.PRE_FIX)}
        for version, entry in files.items():
            message = entry["message"]
            assert entry["status"] == "damaged" and "damaged by claude-mpm's fix_memory_leaks.py" in message
            if corpus.PRE_FIX.index(version) >= corpus.PRE_FIX.index("3.5.0"):
                assert "unexpected indent" in message
            if folder == "with-backup":
                assert "`fix-memory-leaks apply` rebuilds it from hook_handler.py.backup" in message, version
                assert entry["layout"] == inspect_refusing_damage(corpus.handler(version)).layout
            else:
                assert "no hook_handler.py.backup beside it: `pip install --force-reinstall claude-mpm==" in message

    assert main(["check", str(tmp_path / "without-backup"), "--format", "github"]) == 2
    annotations = [line for line in capsys.readouterr().out.splitlines() if line.startswith("::error ")]
    assert len(annotations) == len(handlers)
    assert all(",title=fix-memory-leaks damaged::damaged by claude-mpm" in line for line in annotations)
    assert snapshot(tmp_path) == before


@pytest.mark.corpus
def test_apply_repairs_every_release_with_the_scripts_config(tmp_path, capsys, monkeypatch, script_runs):
    """Run from a checkout, with the config the script wrote there (one value tuned), ``apply`` gives exactly what
    it gives on the pristine release with that config; a second run changes nothing; ``restore`` gives the original."""
    handlers = projects(tmp_path, script_runs)
    damaged = {version: handler.read_bytes() for version, handler in handlers.items()}
    config = tmp_path / "3.8.1" / SCRIPT_CONFIG
    config.write_bytes(config.read_bytes().replace(*TUNED))
    settings = load_config(config).settings
    assert settings.max_delegation_tracking == 150
    expected_by_source = {}
    for version in corpus.PRE_FIX:
        pristine = corpus.handler(version)
        if pristine not in expected_by_source:
            expected_by_source[pristine] = fix_source(pristine, FIX_NAMES, settings).source
    expected = {version: expected_by_source[corpus.handler(version)] for version in corpus.PRE_FIX}
    monkeypatch.chdir(config.parents[1])  # in the checkout: the config is found there, as for its user

    assert main(["apply", str(tmp_path), "--format", "json"]) == 0
    files, summary, config_used = json_files(capsys, tmp_path)
    assert summary == {"repaired": len(corpus.PRE_FIX)} and config_used == str(config.resolve())
    for version, handler in handlers.items():
        assert handler.read_bytes() == expected[version], version
        assert backup_of(handler).read_bytes() == corpus.handler(version)
        assert backup_of(handler, ".damaged").read_bytes() == damaged[version]
        assert files[version]["backup"] == str(backup_of(handler))
        assert {fix["status"] for fix in files[version]["fixes"]} <= {"applied", "not-applicable"}
        if b"self.active_delegations = {}" in corpus.handler(version):
            assert b"MAX_DELEGATION_TRACKING = 150" in expected[version], version
    repaired = snapshot(tmp_path)

    assert main(["apply", str(tmp_path), "--format", "json"]) == 0  # a second run is a no-op
    assert json_files(capsys, tmp_path)[1] == {"already-fixed": len(corpus.PRE_FIX)}
    assert snapshot(tmp_path) == repaired
    assert main(["check", str(tmp_path)]) == 0

    assert main(["restore", str(tmp_path)]) == 0  # the pristine original, not the damaged file
    for version, handler in handlers.items():
        assert handler.read_bytes() == corpus.handler(version)
        assert backup_of(handler, ".damaged").read_bytes() == damaged[version]


@pytest.mark.corpus
def test_apply_without_a_backup_says_how_to_get_the_original_back(tmp_path, capsys, script_runs):
    handlers = projects(tmp_path, script_runs)
    for version, handler in handlers.items():
        backup_of(handler).unlink()
        dist_info = handler.parents[3] / f"claude_mpm-{version}.dist-info"  # as an editable install records it
        dist_info.mkdir()
    before = snapshot(tmp_path)

    assert main(["apply", str(tmp_path)]) == 2

    assert snapshot(tmp_path) == before
    lines = capsys.readouterr().err.splitlines()
    for version, handler in handlers.items():
        (line,) = [line for line in lines if str(handler) in line]
        assert line.startswith(f"damaged: {handler}: damaged by claude-mpm's fix_memory_leaks.py")
        assert f"no hook_handler.py.backup beside it: `pip install --force-reinstall claude-mpm=={version}`" in line
    assert lines[-1].startswith(f"apply: {len(corpus.PRE_FIX)} damaged")


@pytest.mark.corpus
def test_apply_refuses_a_backup_of_another_release(tmp_path, capsys, script_runs, distinct):
    handlers = projects(tmp_path, script_runs)
    for version, handler in handlers.items():
        backup_of(handler).write_bytes(corpus.handler(another_release(version, distinct)))
    before = snapshot(tmp_path)

    assert main(["check", str(tmp_path)]) == 2
    assert main(["apply", str(tmp_path)]) == 2

    assert snapshot(tmp_path) == before
    lines = capsys.readouterr().err.splitlines()
    for handler in handlers.values():
        found = [line for line in lines if str(handler) in line]
        assert len(found) == 2, found  # check, then apply
        assert all("hook_handler.py.backup is not its pristine original" in line for line in found)
        assert all("`pip install --force-reinstall claude-mpm==" in line for line in found)


@pytest.mark.corpus
def test_dry_run_shows_the_repair_and_writes_nothing(tmp_path, capsys, script_runs, distinct):
    handlers = projects(tmp_path, script_runs, distinct)
    before = snapshot(tmp_path)

    assert main(["apply", "--dry-run", str(tmp_path), "--config", str(tmp_path / distinct[0] / SCRIPT_CONFIG)]) == 0

    assert snapshot(tmp_path) == before
    out, err = capsys.readouterr()
    for version, handler in handlers.items():
        repaired = fix_source(corpus.handler(version)).source
        assert pipeline.unified_diff(str(handler), handler.read_bytes(), repaired) in out
        assert f"{handler}: would be repaired (dry run)" in err
    assert "run again without --dry-run to write it" in err


# ---------------------------------------------------------------- backups that are not, or not only, the original


@pytest.mark.corpus
def test_a_backup_left_from_an_older_release_is_not_used(tmp_path, capsys, script_runs):
    """The script run on 3.3.2, claude-mpm upgraded to 3.4.0, the script run again: it keeps the backup it finds,
    3.3.2's, so nothing can rebuild 3.4.0 from it."""
    (handler,) = projects(tmp_path, script_runs, ["3.3.2"]).values()
    handler.write_bytes(corpus.handler("3.4.0"))  # what an upgrade does (it knows nothing of .backup)
    assert "Backup already exists" in run_script(tmp_path / "3.3.2").output
    before = snapshot(tmp_path)

    assert main(["check", str(handler)]) == 2
    assert main(["apply", str(handler)]) == 2

    assert snapshot(tmp_path) == before
    assert "hook_handler.py.backup is not its pristine original" in capsys.readouterr().err


@pytest.mark.corpus
def test_the_original_found_in_an_older_backup_is_what_restore_puts_back(tmp_path, script_runs):
    (handler,) = projects(tmp_path, script_runs, ["3.2.1"]).values()
    other = b"# a backup of something else, newer than the script's\n"
    backup_of(handler, ".backup.1").write_bytes(other)

    assert main(["apply", str(handler)]) == 0

    assert handler.read_bytes() == fix_source(corpus.handler("3.2.1")).source
    assert backup_of(handler, ".backup.1").read_bytes() == other
    assert backup_of(handler, ".backup.2").read_bytes() == corpus.handler("3.2.1")
    assert main(["restore", str(handler)]) == 0 and handler.read_bytes() == corpus.handler("3.2.1")


@pytest.mark.corpus
def test_the_script_run_again_after_a_restore_is_repaired_again(tmp_path, script_runs):
    (handler,) = projects(tmp_path, script_runs, ["3.6.0"]).values()
    damaged = handler.read_bytes()
    assert main(["apply", str(handler)]) == 0
    assert main(["restore", str(handler)]) == 0
    run_script(tmp_path / "3.6.0")
    assert handler.read_bytes() == damaged  # the same damage again, from the same original

    assert main(["apply", str(handler)]) == 0

    assert handler.read_bytes() == fix_source(corpus.handler("3.6.0")).source
    assert sorted(path.name for path in handler.parent.iterdir()) == [
        "hook_handler.py",
        "hook_handler.py.backup",
        "hook_handler.py.damaged",
    ]


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


def test_a_damaged_file_git_tracks_is_brought_back_with_git(fixture_handler, capsys):
    """In a source checkout (no dist-info) that tracks the handler, git has the original (issue 25, item 11)."""
    backup_of(fixture_handler).unlink()
    checkout = fixture_handler.parents[3]
    subprocess.run(["git", "init", "-q", str(checkout)], check=True)
    subprocess.run(["git", "-C", str(checkout), "add", "."], check=True)
    before = snapshot(checkout / "claude_mpm")

    assert main(["apply", str(fixture_handler)]) == 2

    assert snapshot(checkout / "claude_mpm") == before
    (line,) = [line for line in capsys.readouterr().err.splitlines() if str(fixture_handler) in line]
    assert f"`git checkout -- {fixture_handler}` brings the original back" in line and "pip install" not in line


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
    """Repair, restore, another version of the script run on it: the earlier damaged file is not overwritten."""
    first = fixture_handler.read_bytes()
    assert main(["apply", str(fixture_handler)]) == 0
    assert main(["restore", str(fixture_handler)]) == 0
    second = first.replace(b"Connection pool: reuse", b"Connection pool, revised: reuse", 1)
    assert second != first
    fixture_handler.write_bytes(second)

    assert main(["apply", str(fixture_handler)]) == 0

    assert backup_of(fixture_handler, ".damaged").read_bytes() == first
    assert backup_of(fixture_handler, ".damaged.1").read_bytes() == second


@pytest.mark.parametrize("command", ["check", "apply"])
def test_help_gives_the_exit_code_of_a_damaged_handler(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "2 an error" in text and "or a handler damaged by claude-mpm's fix_memory_leaks.py (check;" in text
