"""The command line as a user meets it: every command, every exit code, on the bundled fixtures."""

import json
import shutil
from pathlib import Path

import pytest

from fixer import __version__
from fixer.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
HANDLER = Path("claude_mpm/hooks/claude_hooks/hook_handler.py")


@pytest.fixture
def handler(tmp_path):
    """A copy of the 3.8-shape fixture inside a claude-mpm-like tree."""

    def make(shape: str = "shape-3.8") -> Path:
        target = tmp_path / shape / HANDLER
        target.parent.mkdir(parents=True)
        shutil.copyfile(FIXTURES / shape / HANDLER, target)
        return target

    return make


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("shape", ["shape-3.8", "shape-3.0", "shape-3.8-patched-by-0.1.0", "shape-3.9.9-upstream"])
def test_apply_gives_the_expected_fixture(shape, handler):
    target = handler(shape)
    assert main(["apply", str(target)]) == 0
    assert target.read_bytes() == (FIXTURES / shape / "expected_hook_handler.py").read_bytes()


def test_a_handler_patched_by_0_1_0_is_pending_until_its_pool_is_replaced(handler, capsys):
    """0.1.0's pool lost events and hung hook processes at exit: check must not pass it."""
    target = handler("shape-3.8-patched-by-0.1.0")
    assert main(["check", "--format", "json", str(target)]) == 1
    (entry,) = json.loads(capsys.readouterr().out)["files"]
    pool = next(fix for fix in entry["fixes"] if fix["name"] == "connection-pool")
    assert pool["status"] == "pending" and "older fix-memory-leaks" in pool["reason"]
    assert main(["apply", str(target)]) == 0
    assert main(["check", str(target)]) == 0


def test_apply_then_check_then_restore_round_trip(handler, capsys):
    target = handler()
    original = target.read_bytes()
    assert main(["check", str(target)]) == 1
    assert main(["apply", str(target)]) == 0
    assert Path(f"{target}.backup").read_bytes() == original
    assert main(["check", str(target)]) == 0
    patched = target.read_bytes()
    assert main(["apply", str(target)]) == 0 and target.read_bytes() == patched
    assert main(["restore", str(target)]) == 0
    assert target.read_bytes() == original and Path(f"{target}.backup").exists()
    err = capsys.readouterr().err
    assert "apply: 1 patched" in err and "apply: 1 already-fixed" in err and "restore: 1 restored" in err


def test_dry_run_prints_a_diff_and_writes_nothing(handler, capsys):
    target = handler()
    before = snapshot(target.parent.parent.parent.parent)
    assert main(["apply", "--dry-run", str(target)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"--- a/{str(target).lstrip('/')}\n+++ b/{str(target).lstrip('/')}\n@@ ")
    assert "+class SocketIOConnectionPool:" in out and "-        handler = ClaudeHookHandler()" in out
    assert "\x1b[" not in out  # piped: plain text
    assert "would be patched (dry run)" in err and "run again without --dry-run to write it" in err
    assert snapshot(target.parent.parent.parent.parent) == before


def test_folder_is_searched_for_handlers(handler, tmp_path, capsys):
    handler("shape-3.8")
    handler("shape-3.0")
    assert main(["check", str(tmp_path), "--format", "json"]) == 1
    files = json.loads(capsys.readouterr().out)["files"]
    assert [Path(f["path"]).relative_to(tmp_path).parts[0] for f in files] == ["shape-3.0", "shape-3.8"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["apply", "{tmp}/nowhere"], "no such file or folder"),
        (["check", "{tmp}"], "no hooks/claude_hooks/hook_handler.py in this folder"),
        (["apply", "--select", "speed", "{tmp}"], "unknown fix 'speed'"),
    ],
)
def test_usage_errors_exit_2_with_one_line(argv, message, tmp_path, capsys):
    assert main([part.replace("{tmp}", str(tmp_path)) for part in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_not_a_handler_is_refused_untouched(tmp_path, capsys):
    target = tmp_path / "hook_handler.py"
    target.write_text("print('hello')\n")
    assert main(["apply", str(target)]) == 2
    assert target.read_text() == "print('hello')\n" and [p.name for p in tmp_path.iterdir()] == ["hook_handler.py"]
    assert f"unsupported: {target}: unrecognised handler: no class ClaudeHookHandler" in capsys.readouterr().err


def test_unparsable_file_is_an_error(tmp_path, capsys):
    target = tmp_path / "hook_handler.py"
    target.write_text("def broken(:\n")
    assert main(["check", str(target)]) == 2
    assert f"error: {target}: does not parse as Python (line 1" in capsys.readouterr().err


def test_bad_config_names_the_key_and_line(handler, tmp_path, capsys):
    target = handler()
    config = tmp_path / "memory.yaml"
    config.write_text("limits:\n  max_delegation_tracking: 10\n  max_prompt_trackng: 5\n")
    before = target.read_bytes()
    assert main(["apply", "--config", str(config), str(target)]) == 2
    assert f"{config}:3: unknown key 'limits.max_prompt_trackng'" in capsys.readouterr().err
    assert target.read_bytes() == before


def test_config_values_reach_the_injected_code(handler, tmp_path, capsys):
    target = handler()
    config = tmp_path / "memory.yaml"
    config.write_text("limits:\n  max_prompt_tracking: 42\nconnection_pool:\n  max_connections: 2\n")
    assert main(["apply", "--config", str(config), str(target)]) == 0
    text = target.read_text()
    assert "MAX_PROMPT_TRACKING = 42" in text and "SocketIOConnectionPool(max_connections=2)" in text
    assert f"config: {config}" in capsys.readouterr().err


def test_project_config_is_found_upward(handler, tmp_path, monkeypatch, capsys):
    target = handler()
    (tmp_path / ".claude-mpm").mkdir()
    (tmp_path / ".claude-mpm" / "memory_config.yaml").write_text("limits:\n  cleanup_interval_events: 7\n")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert main(["apply", str(target)]) == 0
    assert "CLEANUP_INTERVAL_EVENTS = 7" in target.read_text()


def test_select_pulls_in_what_a_fix_needs_and_says_so(handler, capsys):
    target = handler()
    assert main(["apply", "--select", "periodic-cleanup", str(target)]) == 0
    err = capsys.readouterr().err
    assert "periodic-cleanup needs limits: selected it too" in err
    assert main(["check", "--format", "json", str(target)]) == 1
    statuses = {f["name"]: f["status"] for f in json.loads(capsys.readouterr().out)["files"][0]["fixes"]}
    assert statuses == {
        "connection-pool": "pending",
        "singleton": "pending",
        "limits": "present",
        "periodic-cleanup": "present",
        "teardown": "pending",
    }


def test_fixes_lists_all_five_with_their_needs(capsys):
    assert main(["fixes"]) == 0
    out = capsys.readouterr().out
    for name in (
        "connection-pool",
        "singleton",
        "limits",
        "periodic-cleanup (needs limits)",
        "teardown (needs connection-pool)",
    ):
        assert name in out


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and __version__ in capsys.readouterr().out


def test_restore_without_backup_is_an_error(handler, capsys):
    target = handler()
    assert main(["restore", str(target)]) == 2
    assert "no backup to restore" in capsys.readouterr().err


def test_restore_refuses_a_file_the_tool_did_not_patch(handler, capsys):
    target = handler()
    assert main(["apply", str(target)]) == 0
    upgraded = b"# a newer release, installed over the patched file\n"
    target.write_bytes(upgraded)
    assert main(["restore", str(target)]) == 2
    assert "carries no fix-memory-leaks marks" in capsys.readouterr().err and target.read_bytes() == upgraded
    assert main(["restore", "--force", str(target)]) == 0
    assert target.read_bytes() == Path(f"{target}.backup").read_bytes()


def test_a_different_older_backup_is_kept_and_a_numbered_one_written(handler):
    target = handler()
    older = b"# the original of an older release\n"
    Path(f"{target}.backup").write_bytes(older)
    original = target.read_bytes()
    assert main(["apply", str(target)]) == 0
    assert Path(f"{target}.backup").read_bytes() == older
    assert Path(f"{target}.backup.1").read_bytes() == original
    assert main(["restore", str(target)]) == 0 and target.read_bytes() == original


# ---------------------------------------------------------------- issue 25: no silent traps


@pytest.mark.parametrize("command", ["check", "apply", "restore"])
def test_a_missing_path_under_json_is_one_json_object_naming_it(command, tmp_path, capsys):
    missing = str(tmp_path / "nowhere")
    assert main([command, missing, "--format", "json"]) == 2
    out, err = capsys.readouterr()
    document = json.loads(out)
    assert err == ""
    (entry,) = document["files"]
    assert entry["path"] == missing and entry["status"] == "error" and entry["message"] == "no such file or folder"
    assert document["summary"] == {"error": 1}


def test_a_missing_path_under_github_is_an_error_annotation(tmp_path, capsys):
    missing = str(tmp_path / "nowhere")
    assert main(["check", missing, "--format", "github"]) == 2
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"::error file={missing},title=fix-memory-leaks error::no such file or folder"


def test_a_syntax_errors_annotation_carries_its_line_and_column(tmp_path, capsys):
    target = tmp_path / "hook_handler.py"
    target.write_text("import os\n\ndef broken(:\n")
    assert main(["check", str(target), "--format", "github"]) == 2
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"::error file={target},line=3,col=12,title=fix-memory-leaks error::does not parse")


def test_dry_run_json_says_so_and_carries_each_changed_files_diff(handler, capsys):
    changed, unchanged = handler("shape-3.8"), handler("shape-3.9.9-upstream")
    assert main(["apply", str(unchanged)]) == 0
    capsys.readouterr()
    before = changed.read_bytes()
    assert main(["apply", "--dry-run", "--format", "json", str(changed), str(unchanged)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["dry_run"] is True and changed.read_bytes() == before
    by_path = {entry["path"]: entry for entry in document["files"]}
    diff = by_path[str(changed)]["diff"]
    assert diff.startswith(f"--- a/{str(changed).lstrip('/')}\n") and "+class SocketIOConnectionPool:" in diff
    assert by_path[str(unchanged)]["diff"] == ""
    assert main(["apply", "--format", "json", str(changed)]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["dry_run"] is False and "diff" not in written["files"][0]


def test_restore_says_what_it_did_once_and_takes_format_json(handler, capsys):
    target = handler()
    assert main(["apply", str(target)]) == 0
    capsys.readouterr()
    assert main(["restore", str(target), "--no-color"]) == 0
    line, summary = capsys.readouterr().err.splitlines()
    assert line == f"{target}: restored from {target}.backup (the backup is kept)"
    assert summary == "restore: 1 restored"
    assert main(["restore", str(target), "--format", "json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["files"]
    assert entry["status"] == "restored" and entry["message"].startswith(f"already identical to {target}.backup")
