"""The command line where CI and people run it: JSON and GitHub output, --installed in a real venv,
pre-commit hooks, parallel folders, colour, quiet/verbose and an instant --help."""

from __future__ import annotations

import io
import json
import re
import shlex
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
import yaml

from bench import corpus
from codemods.fixes.registry import FIX_NAMES
from codemods.status import FileStatus
from fixer.cli import main
from fixer.patch.report import Command, Report
from fixer.patch.results import FileResult
from tests.terminal import ROOT, run_on_terminal

ANSI = re.compile(r"\x1b\[")
ANNOTATION = re.compile(r"^::(error|warning) (?P<properties>[^:]*)::(?P<message>.*)$")
# Releases of every layout, given out of order: the output must come sorted by path all the same.
TWELVE = ("3.8.1", "3.0.0", "3.4.10", "3.9.4", "3.2.1", "4.1.0", "3.4.2", "3.5.0", "3.6.0", "3.1.3", "3.3.2", "5.0.1")


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def annotations(stdout: str):
    """(kind, {property: value}, message) per workflow command, unescaped as GitHub does."""
    found = []
    for line in stdout.splitlines():
        match = ANNOTATION.match(line)
        if match:
            properties = dict(item.split("=", 1) for item in match["properties"].split(","))
            found.append((match[1], {k: unescape(v) for k, v in properties.items()}, unescape(match["message"])))
    return found


def unescape(text: str) -> str:
    for escaped, plain in (("%2C", ","), ("%3A", ":"), ("%0A", "\n"), ("%0D", "\r"), ("%25", "%")):
        text = text.replace(escaped, plain)
    return text


@pytest.fixture
def mixed_tree(real_handler):
    """A folder with a pre-fix release of each kind, an upstream-fixed one and an unrecognised file."""
    handlers = {version: real_handler(version) for version in ("3.8.1", "3.0.0", "4.5.0")}
    stranger = handlers["3.0.0"].parents[4] / "stranger" / "hooks" / "claude_hooks" / "hook_handler.py"
    stranger.parent.mkdir(parents=True)
    stranger.write_text("print('not a claude-mpm hook handler')\n")
    return handlers["3.0.0"].parents[4], handlers, stranger


# ---------------------------------------------------------------- check --format json


def test_check_json_has_the_documented_keys_and_agrees_with_the_exit_code(capsys, mixed_tree):
    root, handlers, stranger = mixed_tree
    code, out, err = run(capsys, "check", str(root), "--format", "json", "--jobs", "1")
    document = json.loads(out)
    assert err == ""
    assert set(document) == {"files", "summary", "config"}
    assert document["config"] == "built-in defaults"
    by_path = {entry["path"]: entry for entry in document["files"]}
    assert set(by_path) == {str(path) for path in [*handlers.values(), stranger]}
    for entry in document["files"]:
        assert set(entry) == {"path", "status", "layout", "fixes", "message", "backup", "note"}
        for fix in entry["fixes"]:
            assert set(fix) == {"name", "status", "reason", "line"}
            assert isinstance(fix["line"], int)
    statuses = [entry["status"] for entry in document["files"]]
    assert document["summary"] == {status: statuses.count(status) for status in set(statuses)}

    pending_file = by_path[str(handlers["3.8.1"])]
    assert pending_file["status"] == FileStatus.PENDING and pending_file["layout"]
    assert [fix["name"] for fix in pending_file["fixes"]] == list(FIX_NAMES)
    assert {fix["status"] for fix in pending_file["fixes"]} == {FileStatus.PENDING}
    upstream = by_path[str(handlers["4.5.0"])]
    assert upstream["status"] == "ok"
    assert all(fix["status"] == "not-applicable" and "4.x+" in fix["reason"] for fix in upstream["fixes"])
    assert by_path[str(stranger)]["status"] == FileStatus.UNSUPPORTED and by_path[str(stranger)]["message"]
    assert code == 2  # the unrecognised file wins over the pending fixes


def test_check_json_of_pending_files_only_exits_1(capsys, real_handler):
    handler = real_handler("3.5.0")
    code, out, _ = run(capsys, "check", str(handler), "--format", "json")
    assert code == 1
    assert json.loads(out)["summary"] == {FileStatus.PENDING: 1}


def test_apply_json_reports_patched_files_with_their_backup(capsys, real_handler):
    handler = real_handler("3.4.27")
    code, out, _ = run(capsys, "apply", str(handler), "--format", "json")
    entry = json.loads(out)["files"][0]
    assert code == 0
    assert entry["status"] == "patched"
    assert Path(entry["backup"]).read_bytes() == corpus.handler("3.4.27")
    assert {fix["status"] for fix in entry["fixes"]} <= {"applied", "not-applicable"}


# ---------------------------------------------------------------- check --format github


def test_github_annotates_each_pending_fix_on_its_line(capsys, mixed_tree):
    root, _, stranger = mixed_tree
    code, out, _ = run(capsys, "check", str(root), "--format", "github")
    _, json_out, _ = run(capsys, "check", str(root), "--format", "json")
    pending = [
        (entry["path"], fix["name"])
        for entry in json.loads(json_out)["files"]
        for fix in entry["fixes"]
        if fix["status"] == FileStatus.PENDING
    ]
    found = annotations(out)
    per_fix = [(props["file"], props["title"].split()[-1]) for kind, props, _ in found if "line" in props]
    assert sorted(per_fix) == sorted(pending) and len(pending) == 6  # five for 3.8.1, singleton for 3.0.0
    assert all(kind == "error" for kind, _, _ in found)
    for _, props, message in found:
        if "line" not in props:
            continue
        fix, lines, line = props["title"].split()[-1], Path(props["file"]).read_text().splitlines(), int(props["line"])
        assert 1 <= line <= len(lines)
        assert fix in message and "fix-memory-leaks apply" in message
        if fix == "singleton":
            assert lines[line - 1].startswith("def main(")
    unsupported = [(props, message) for _, props, message in found if "line" not in props]
    assert [props["file"] for props, _ in unsupported] == [str(stranger)]
    assert "unrecognised" in unsupported[0][1]
    assert out.splitlines()[-1].startswith("check: ")
    assert code == 2


def test_github_escapes_paths_and_messages(capsys, tmp_path):
    odd = tmp_path / "a,b:c%d" / "claude_mpm" / "hooks" / "claude_hooks" / "hook_handler.py"
    odd.parent.mkdir(parents=True)
    odd.write_bytes(corpus.handler("3.0.0"))
    code, out, _ = run(capsys, "check", str(odd.parents[3]), "--format", "github")
    found = annotations(out)
    assert code == 1 and len(found) == 1
    assert found[0][1]["file"] == str(odd)
    raw_properties = out.splitlines()[0].split("::")[1]
    assert "a%2Cb%3Ac%25d" in raw_properties

    stream = io.StringIO()
    message = "line one\nline two: 100%\r"
    Report(Command.CHECK, [FileResult("x,y.py", FileStatus.ERROR, message=message)]).render_github(stream)
    first = stream.getvalue().splitlines()[0]
    assert "\n" not in first and "%0A" in first
    assert annotations(first) == [("error", {"file": "x,y.py", "title": "fix-memory-leaks error"}, message)]


def test_github_gives_nothing_to_annotate_for_fixed_files(capsys, real_handler):
    handler = real_handler("3.9.11")
    assert run(capsys, "apply", str(handler))[0] == 0  # claude-mpm's own broken fix, repaired
    code, out, _ = run(capsys, "check", str(handler), "--format", "github")
    assert code == 0
    assert annotations(out) == []
    assert out.strip() == "check: 1 ok"


# ---------------------------------------------------------------- --installed, the CI upgrade step


def _pip_install(python: Path, version: str) -> bytes:
    """Install a cached release wheel into the venv (no network); returns the wheel's handler bytes."""
    wheel = corpus._wheel(version)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--force-reinstall", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return zipfile.ZipFile(wheel).read(corpus.HANDLER_IN_WHEEL)


@pytest.mark.corpus
def test_ci_upgrade_step_in_a_real_venv(capsys, tmp_path):
    """Install 3.8.1: the gate fails with annotations; apply; the gate passes; upgrade to 3.9.4 (claude-mpm's
    own broken fix): the gate fails again, apply repairs it, the gate passes; upgrade to 4.1.0: no change."""
    try:
        corpus.fetch_all(["3.8.1", "3.9.4", "4.1.0"])
    except corpus.CorpusUnavailable as error:
        pytest.skip(str(error))
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    installed = ["--installed", "--python", str(python)]
    _pip_install(python, "3.8.1")
    handler = next((tmp_path / "venv").glob("lib/python*/site-packages/claude_mpm/hooks/claude_hooks/hook_handler.py"))

    code, out, _ = run(capsys, "check", *installed, "--format", "github")
    assert code == 1
    assert {props["file"] for _, props, _ in annotations(out)} == {str(handler)}
    assert len(annotations(out)) == len(FIX_NAMES)

    code, _, err = run(capsys, "apply", *installed)
    assert code == 0 and "1 patched" in err
    assert run(capsys, "check", *installed, "--format", "github")[0] == 0

    upstream = _pip_install(python, "3.9.4")
    code, out, _ = run(capsys, "check", *installed, "--format", "github")
    assert code == 1 and len(annotations(out)) == len(FIX_NAMES) - 1  # its singleton works
    assert run(capsys, "apply", *installed)[0] == 0 and handler.read_bytes() != upstream
    assert run(capsys, "check", *installed)[0] == 0

    # 4.1.0: claude-mpm's own hook, broken in real use (issue 25, item 7): the gate fails, apply leaves it alone.
    broken = _pip_install(python, "4.1.0")
    for command, expected in (("check", 1), ("apply", 0), ("check", 1)):
        code, _, err = run(capsys, command, *installed, "--no-color")
        assert code == expected, err
        assert handler.read_bytes() == broken
        assert f"{handler}: broken-upstream" in err and "upgrade to claude-mpm 4.1.10 or later" in err
    code, out, _ = run(capsys, "check", *installed, "--format", "github")
    (error,) = annotations(out)
    assert code == 1 and error[0] == "error" and error[2].endswith("upgrade to claude-mpm 4.1.10 or later")


@pytest.mark.corpus
def test_python_alone_checks_and_patches_its_claude_mpm_and_the_hints_repeat_it(capsys, tmp_path):
    """Issue 25, items 3 and 4, on a real install of 3.8.1: ``--python P`` without ``--installed`` is P's claude-mpm,
    and every next-step hint repeats the flags that chose the handlers and the fixes, so that pasting it works."""
    try:
        corpus.fetch_all(["3.8.1"])
    except corpus.CorpusUnavailable as error:
        pytest.skip(str(error))
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    original = _pip_install(python, "3.8.1")
    handler = next((tmp_path / "venv").glob("lib/python*/site-packages/" + corpus.HANDLER_IN_WHEEL))
    config = tmp_path / "my config.yaml"
    config.write_text("limits:\n  max_prompt_tracking: 42\n")
    chosen = ["--python", str(python), "--config", str(config), "--select", "limits"]

    code, _, err = run(capsys, "check", *chosen)
    assert code == 1 and str(handler) in err
    hint = re.search(r"run `(fix-memory-leaks apply [^`]+)` to patch", err.splitlines()[-1])
    assert hint, err
    assert shlex.split(hint[1]) == ["fix-memory-leaks", "apply", *chosen]
    code, _, err = run(capsys, *shlex.split(hint[1])[1:])  # the hint, pasted
    assert code == 0 and "1 patched" in err and b"MAX_PROMPT_TRACKING = 42" in handler.read_bytes()
    undo = re.search(r"undo with `([^`]+)`", err.splitlines()[-1])
    assert undo and shlex.split(undo[1]) == ["fix-memory-leaks", "restore", "--python", str(python)]
    assert run(capsys, "check", *chosen)[0] == 0
    code, _, err = run(capsys, *shlex.split(undo[1])[1:])
    assert code == 0 and handler.read_bytes() == original
    assert err.count("restored") == 2, err  # once for the file, once in the summary


def test_installed_errors_are_one_line_exit_2(capsys, tmp_path):
    bare = tmp_path / "bare"
    venv.create(bare, with_pip=False)
    cases = [
        (["check", "--installed", "--python", str(bare / "bin" / "python")], "claude-mpm is not installed"),
        (["check", "--installed", "--python", str(tmp_path / "nope")], "cannot run this Python"),
        (["check", "--installed", str(tmp_path)], "not both"),
        (["check", "--python", str(bare / "bin" / "python")], "claude-mpm is not installed"),
        (["check", "--python", str(bare / "bin" / "python"), str(tmp_path)], "not both"),
    ]
    for argv, expected in cases:
        code, out, err = run(capsys, *argv)
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and expected in err and "Traceback" not in err


# ---------------------------------------------------------------- pre-commit


def test_pre_commit_hooks_run_check_and_apply_on_handler_files(capsys, real_handler):
    hooks = {hook["id"]: hook for hook in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"fix-memory-leaks", "fix-memory-leaks-apply"}
    handler = real_handler("3.6.0")
    relative = "src/claude_mpm/hooks/claude_hooks/hook_handler.py"
    for hook in hooks.values():
        assert hook["pass_filenames"] is True and hook["language"] == "python"
        assert re.search(hook["files"], relative) and re.search(hook["files"], relative.split("/", 1)[1])
        assert not re.search(hook["files"], "claude_mpm/hooks/claude_hooks/hook_handler.py.backup")
        assert not re.search(hook["files"], "src/my_hook_handler.py")
        assert hook["entry"].split()[0] == "fix-memory-leaks"

    check = hooks["fix-memory-leaks"]["entry"].split()[1:]
    apply = hooks["fix-memory-leaks-apply"]["entry"].split()[1:]
    assert run(capsys, *check, str(handler))[0] == 1
    assert run(capsys, *apply, str(handler))[0] == 0
    assert run(capsys, *check, str(handler))[0] == 0


# ---------------------------------------------------------------- parallel folders


@pytest.fixture
def twelve_handlers(real_handler):
    paths = [real_handler(version) for version in TWELVE]
    return paths[0].parents[4], paths


def test_jobs_do_not_change_the_output_or_its_order(capsys, twelve_handlers):
    root, paths = twelve_handlers
    outputs = {}
    for jobs in ("1", "2"):
        for format_ in ("json", "text", "github"):
            outputs[jobs, format_] = run(capsys, "check", str(root), "--format", format_, "--jobs", jobs)
    for format_ in ("json", "text", "github"):
        assert outputs["1", format_] == outputs["2", format_]
    listed = [entry["path"] for entry in json.loads(outputs["1", "json"][1])["files"]]
    assert listed == sorted(str(path) for path in paths)
    assert outputs["1", "json"][0] == 1


def test_jobs_do_not_change_apply_dry_run(capsys, twelve_handlers):
    root, paths = twelve_handlers
    one = run(capsys, "apply", str(root), "--dry-run", "--jobs", "1")
    two = run(capsys, "apply", str(root), "--dry-run", "--jobs", "2")
    assert one == two and one[0] == 0
    diffed = re.findall(r"^--- (.*)$", one[1], flags=re.MULTILINE)
    assert diffed == sorted(diffed) and len(diffed) >= 8
    assert [path.read_bytes() for path in paths] == [corpus.handler(version) for version in TWELVE]


def test_bad_jobs_is_a_usage_error(capsys, real_handler):
    code, _, err = run(capsys, "check", str(real_handler("3.0.0")), "--jobs", "0")
    assert code == 2 and "--jobs must be at least 1" in err


# ---------------------------------------------------------------- terminal, colour, quiet, verbose


def test_piped_output_has_no_colour_and_no_progress_bar(twelve_handlers):
    root, _ = twelve_handlers
    result = subprocess.run(
        [sys.executable, "-m", "fixer", "check", str(root), "--jobs", "2"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 1
    assert not ANSI.search(result.stderr + result.stdout)
    assert "hook handlers" not in result.stderr and "%" not in result.stderr
    assert result.stdout == ""


def test_terminal_gets_colour_and_a_progress_bar_on_stderr_only(twelve_handlers, tmp_path):
    root, _ = twelve_handlers
    with open(tmp_path / "stdout", "w") as stdout:
        code, shown = run_on_terminal(["check", str(root), "--jobs", "2"], stdout=stdout)
    assert code == 1
    assert "\x1b[33mpending" in shown  # the pending status in yellow
    assert "hook handlers" in shown  # the transient progress bar
    assert (tmp_path / "stdout").read_text() == ""


@pytest.mark.parametrize("switch", [{"NO_COLOR": "1"}, "--no-color"])
def test_no_color_turns_colour_off_on_a_terminal(real_handler, switch):
    handler = real_handler("3.8.1")
    env = switch if isinstance(switch, dict) else None
    flags = [switch] if isinstance(switch, str) else []
    code, shown = run_on_terminal(["check", str(handler), *flags], env_extra=env)
    assert code == 1
    assert "pending" in shown and "\x1b[33m" not in shown and "\x1b[1m" not in shown


def test_quiet_prints_only_the_summary_and_errors(capsys, mixed_tree):
    root, _, stranger = mixed_tree
    code, out, err = run(capsys, "check", str(root), "--quiet")
    lines = err.splitlines()
    assert code == 2 and out == ""
    assert len(lines) == 2
    assert lines[0].startswith("unsupported: ") and str(stranger) in lines[0]
    assert lines[1].startswith("check: ")


def test_verbose_shows_every_fix_of_an_upstream_rework_file(capsys, real_handler):
    handler = real_handler("4.1.0")
    _, _, normal = run(capsys, "check", str(handler))
    _, _, verbose = run(capsys, "check", str(handler), "--verbose")
    assert not any(name in normal for name in FIX_NAMES)
    assert all(name in verbose for name in FIX_NAMES)


def test_quiet_and_verbose_together_are_refused(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["check", "--quiet", "--verbose"])
    assert stopped.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


# ---------------------------------------------------------------- --help

COMMANDS = ("apply", "check", "restore", "fixes", "init", "monitor", "verify")
HELP_IMPORTS = """
import sys
from fixer.cli import main
for argv in ([], *([command] for command in {commands!r})):
    try:
        main([*argv, "--help"])
    except SystemExit as stopped:
        assert stopped.code == 0, argv
heavy = sorted(name for name in sys.modules if name.split(".")[0] in ("libcst", "yaml", "rich", "psutil"))
print("HEAVY", heavy, file=sys.stderr)
"""


def test_help_of_every_command_imports_no_heavy_library():
    result = subprocess.run(
        [sys.executable, "-c", HELP_IMPORTS.format(commands=COMMANDS)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stderr
    assert result.stdout.count("usage: fix-memory-leaks") == len(COMMANDS) + 1


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_every_command_has_an_example(capsys, command):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    examples = text.split("example", 1)[1]
    assert re.search(rf"^  fix-memory-leaks {command}\b", examples, flags=re.MULTILINE)
    assert "exit codes" in text
