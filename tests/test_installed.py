"""``--installed`` finds the hook Claude Code runs: its settings, the wrapper's interpreter (marker ``deploy``).

A temporary HOME holds Claude Code settings in the shapes claude-mpm's installers write: 3.x
``scripts/install_hooks.py`` (the absolute path of ``hook_wrapper.sh`` under every event, matcher ``*``,
in ``~/.claude/settings.json``), 4.1+ ``installer.py`` (``claude-hook-handler.sh``, no matcher for the
non-tool events), 5.x+ (the project's ``.claude/settings.local.json`` / ``settings.json``, the bare
``claude-hook`` entry point or ``claude-hook-fast.sh``). claude-mpm 3.8.1 is a real ``pip install`` in a
venv of its own (``bench.corpus``); the tool runs from another one. The wrappers are the releases' own
files, from the install or the cached wheel; nothing of claude-mpm is copied into this repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import corpus
from fixer.install.discovery import RunMode, discover, is_claude_mpm_command, shebang_python

EVENTS_3X = ("UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop", "SubagentStop")


def settings_3x(command: str) -> dict:
    """What 3.x's scripts/install_hooks.py writes into ~/.claude/settings.json."""
    group = {"matcher": "*", "hooks": [{"type": "command", "command": command}]}
    return {"hooks": {event: [group] for event in EVENTS_3X}}


def settings_4x(command: str) -> dict:
    """What 4.1+'s installer.py writes: permissions kept, a matcher only on the tool events."""
    hook = {"type": "command", "command": command}
    hooks = {event: [{"matcher": "*", "hooks": [hook]}] for event in ("PreToolUse", "PostToolUse")}
    hooks.update({event: [{"hooks": [hook]}] for event in ("UserPromptSubmit", "Stop", "SubagentStop")})
    return {"permissions": {"allow": []}, "enableAllProjectMcpServers": False, "hooks": hooks}


def write_json(path: Path, document) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2))
    return path


@pytest.fixture(scope="module")
def install(required) -> Path:
    """The venv of a real ``pip install claude-mpm==3.8.1`` (read only here)."""
    return required(corpus.installed, "3.8.1").parents[1]


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> Path:
    """A python3 without claude-mpm: what a pipx user's PATH finds first."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return venv / "bin" / "python3"


def handler_of(venv: Path) -> Path:
    return next(venv.glob("lib/python*/site-packages/claude_mpm/hooks/claude_hooks/hook_handler.py"))


def environment(home: Path, *path: Path, **extra: str) -> dict[str, str]:
    """A user's environment: this HOME, these folders (then the system's) on PATH, no venv active."""
    return {"HOME": str(home), "PATH": os.pathsep.join([*map(str, path), "/usr/bin", "/bin"]), **extra}


def same(first, second) -> bool:
    return os.path.realpath(first) == os.path.realpath(second)


def runs_in(python: str | None, venv: Path) -> bool:
    """``python`` is that venv's (not compared by real path: every venv's python links to the same base)."""
    return python is not None and Path(python).parent == venv / "bin"


@pytest.mark.deploy
def test_3x_settings_name_the_wrapper_and_the_python_it_picks(install, tmp_path):
    handler = handler_of(install)
    settings = write_json(
        tmp_path / "home/.claude/settings.json", settings_3x(str(handler.with_name("hook_wrapper.sh")))
    )
    project = tmp_path / "project"
    project.mkdir()
    found = discover(project, environment(tmp_path / "home", install / "bin"))
    first = found.targets[0]
    assert first.error is None, first.error
    assert same(first.handler, handler) and first.run_mode is RunMode.SCRIPT
    assert runs_in(first.python, install)  # python3 from PATH: the install's, first on PATH
    assert first.origin.startswith("~/.claude/settings.json (UserPromptSubmit, PreToolUse")
    # The claude-mpm command on PATH has the same handler: listed once, both origins said.
    assert [target.handler for target in found.targets].count(first.handler) == 1
    assert "also the claude-mpm command on PATH" in first.origin
    assert settings.read_text() == json.dumps(settings_3x(first.command), indent=2)  # never written


@pytest.mark.deploy
def test_wrapper_takes_virtual_env_before_python3_on_path(install, bare_python, tmp_path):
    wrapper = handler_of(install).with_name("hook_wrapper.sh")
    write_json(tmp_path / "home/.claude/settings.json", settings_3x(str(wrapper)))
    with_venv = environment(tmp_path / "home", bare_python.parent, VIRTUAL_ENV=str(install))
    target = discover(tmp_path, with_venv).targets[0]
    assert target.error is None and target.python == str(install / "bin" / "python")
    without = discover(tmp_path, environment(tmp_path / "home", bare_python.parent)).targets[0]
    assert without.python == str(bare_python)
    assert "cannot import claude_mpm" in without.error and f"VIRTUAL_ENV={install}" in without.error


def pipx_like(home: Path, install: Path) -> Path:
    """~/.local/pipx/venvs/claude-mpm (the install) and ~/.local/bin/claude-mpm; returns the wrapper as
    pipx's claude-mpm registers it."""
    venvs = home / ".local/pipx/venvs"
    venvs.mkdir(parents=True)
    (venvs / "claude-mpm").symlink_to(install, target_is_directory=True)
    (home / ".local/bin").mkdir()
    (home / ".local/bin/claude-mpm").symlink_to(venvs / "claude-mpm/bin/claude-mpm")
    site = next((venvs / "claude-mpm").glob("lib/python*/site-packages"))
    return site / "claude_mpm/hooks/claude_hooks/hook_wrapper.sh"


def run_tool(home: Path, cwd: Path, *arguments: str, path: list[Path]) -> subprocess.CompletedProcess:
    """The tool from its own venv (not claude-mpm's), as a user runs it, no venv active."""
    env = dict(environment(home, *path), NO_COLOR="1", PYTHONPATH=str(Path(__file__).parents[1]))
    command = [sys.executable, "-m", "fixer", *arguments]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


@pytest.mark.deploy
def test_pipx_layout_whose_wrapper_finds_the_wrong_python3(install, bare_python, tmp_path):
    home = tmp_path / "home"
    wrapper = pipx_like(home, install)
    write_json(home / ".claude/settings.json", settings_3x(str(wrapper)))
    project = tmp_path / "project"
    project.mkdir()
    path = [home / ".local/bin", bare_python.parent]
    with corpus.pristine_install("3.8.1"):
        check = run_tool(home, project, "check", "--installed", path=path)
        verify = run_tool(home, project, "verify", "--installed", "--format", "json", path=path)
    assert check.returncode == 2, check.stderr
    errors = [line.strip() for line in check.stderr.splitlines() if line.strip().startswith("error: ")]
    assert len(errors) == 1, check.stderr
    assert f"runs {bare_python}" in errors[0] and "cannot import claude_mpm" in errors[0]
    assert "fix: start Claude Code with VIRTUAL_ENV=" in errors[0] and "pip install claude-mpm==3.8.1" in errors[0]
    assert "also the claude-mpm command on PATH" in errors[0]  # the same file (real path) once
    assert "pending" in check.stderr  # the file itself is still checked
    result = json.loads(verify.stdout)
    assert verify.returncode == 2 and result["summary"] == {"error": 1}, verify.stderr
    assert "cannot import claude_mpm" in result["files"][0]["message"]


@pytest.mark.deploy
def test_later_installers_shapes(install, required, tmp_path):
    """4.1's claude-hook-handler.sh in a source checkout with .venv; 5.x's claude-hook entry point in the
    project's settings.local.json; claude-hook-fast.sh, which runs no Python."""
    release = required(corpus.unpacked, "4.1.10")
    checkout = tmp_path / "checkout"
    shutil.copytree(release / "claude_mpm", checkout / "src/claude_mpm")
    (checkout / ".venv").symlink_to(install, target_is_directory=True)
    wrapper = checkout / "src/claude_mpm/scripts/claude-hook-handler.sh"
    home = tmp_path / "home"
    write_json(home / ".claude/settings.json", settings_4x(str(wrapper)))
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    entry_point = bin_folder / "claude-hook"  # a console script's shape: a shebang naming its interpreter
    entry_point.write_text(f"#!{install}/bin/python\nimport sys\nsys.exit(0)\n")
    entry_point.chmod(0o755)
    project = tmp_path / "project"
    write_json(project / ".claude/settings.local.json", {"hooks": {"Stop": [{"hooks": [{"command": "claude-hook"}]}]}})
    fast = {"type": "command", "command": "/opt/x/claude_mpm/scripts/claude-hook-fast.sh"}
    write_json(project / ".claude/settings.json", {"hooks": {"Stop": [{"hooks": [fast]}]}})

    found = discover(project, environment(home, bin_folder))
    by_command = {target.command: target for target in found.targets}
    from_checkout = by_command[str(wrapper)]
    assert from_checkout.error is None and from_checkout.run_mode is RunMode.MODULE
    assert from_checkout.pythonpath == (str(checkout / "src"),)  # the checkout's src comes first
    assert same(from_checkout.handler, checkout / "src/claude_mpm/hooks/claude_hooks/hook_handler.py")
    assert from_checkout.python.startswith(str(checkout / ".venv"))
    from_entry_point = by_command["claude-hook"]
    assert from_entry_point.error is None and same(from_entry_point.handler, handler_of(install))
    assert from_entry_point.origin.startswith(f"{project}/.claude/settings.local.json (Stop)")
    assert any("claude-hook-fast.sh runs no Python handler" in message for message in found.messages)


@pytest.mark.deploy
def test_bad_settings_one_line_each_and_the_search_goes_on(install, tmp_path):
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    broken = home / ".claude/settings.json"
    broken.write_text('{"hooks": {')
    project = tmp_path / "outer/project"
    (project / ".claude/settings.json").mkdir(parents=True)  # not a file: cannot be read
    wrong_shape = write_json(project / ".claude/settings.local.json", {"hooks": ["not", "an", "object"]})
    wrapper = str(handler_of(install).with_name("hook_wrapper.sh"))
    foreign = {"hooks": [{"type": "command", "command": "echo hi"}, {"type": "command", "command": "/x/lint.sh"}]}
    good = settings_3x(wrapper)
    good["hooks"]["Stop"].append(foreign)
    outer = write_json(tmp_path / "outer/.claude/settings.json", good)
    before = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in (broken, wrong_shape, outer)}

    found = discover(project, environment(home, install / "bin"))
    assert len(found.warnings) == 3, found.warnings
    assert found.warnings[0].startswith("~/.claude/settings.json: not valid JSON")
    assert found.warnings[1].startswith(f"{project}/.claude/settings.json: cannot read it")
    assert found.warnings[2] == f"{wrong_shape}: 'hooks' is not an object; skipped"
    assert all("\n" not in warning for warning in found.warnings)
    commands = [target.command for target in found.targets if target.command]
    assert commands == [wrapper]  # found further up; echo and lint.sh are not claude-mpm's
    assert {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in before} == before


def test_a_stale_registration_is_an_error_with_the_fix(tmp_path):
    stale = tmp_path / "gone/lib/python3.11/site-packages/claude_mpm/hooks/claude_hooks/hook_wrapper.sh"
    write_json(tmp_path / "home/.claude/settings.json", settings_3x(str(stale)))
    target = discover(tmp_path, environment(tmp_path / "home")).targets[0]
    assert target.handler == stale.with_name("hook_handler.py")
    assert f"{stale} does not exist" in target.error and "fix: register the hooks again" in target.error


@pytest.mark.parametrize(
    ("command", "ours"),
    [
        pytest.param("/v/lib/python3.11/site-packages/claude_mpm/hooks/claude_hooks/hook_wrapper.sh", True, id="3.x"),
        pytest.param("/v/site-packages/claude_mpm/scripts/claude-hook-handler.sh", True, id="4.1"),
        pytest.param("claude-hook", True, id="entry-point"),
        pytest.param("/home/u/.local/bin/claude-hook", True, id="entry-point-path"),
        pytest.param("/p/claude_mpm/scripts/claude-hook-fast.sh", True, id="fast"),
        pytest.param("bash /p/claude_mpm/hooks/claude_hooks/hook_wrapper.sh", True, id="through-bash"),
        pytest.param("python3 -m claude_mpm.hooks.claude_hooks.hook_handler", True, id="python-module"),
        pytest.param("python3 -m black .", False, id="other-module"),
        pytest.param("echo hi", False, id="foreign"),
        pytest.param("/x/hook_handler.py", False, id="a-bare-file"),
        pytest.param("'unbalanced", False, id="bad-quoting"),
    ],
)
def test_which_commands_are_claude_mpms(command, ours):
    assert is_claude_mpm_command(command) is ours


def test_shebang_forms(tmp_path):
    plain, through_env, long_path = tmp_path / "plain", tmp_path / "env", tmp_path / "long"
    plain.write_text("#!/opt/venv/bin/python\n")
    through_env.write_text("#!/usr/bin/env python3\n")
    long_path.write_text("#!/bin/sh\n'''exec' \"/very long/venv/bin/python\" \"$0\" \"$@\"\n' '''\n")
    environ = {"PATH": str(Path(sys.executable).parent)}
    assert shebang_python(plain, environ) == "/opt/venv/bin/python"
    assert same(shebang_python(through_env, environ), shutil.which("python3", path=environ["PATH"]))
    assert shebang_python(long_path, environ) == "/very long/venv/bin/python"


@pytest.mark.deploy
def test_verify_installed_runs_the_hook_in_the_wrappers_python(install, tmp_path):
    """Not this tool's interpreter: the one the registered hook_wrapper.sh picks (python3 from PATH)."""
    home = tmp_path / "home"
    write_json(home / ".claude/settings.json", settings_3x(str(handler_of(install).with_name("hook_wrapper.sh"))))
    with corpus.pristine_install("3.8.1"):
        run = run_tool(
            home, tmp_path, "verify", "--installed", "--events", "1", "--format", "json", path=[install / "bin"]
        )
    result = json.loads(run.stdout)
    assert len(result["files"]) == 1, run.stderr  # the settings' hook and the claude-mpm command's: one file
    verified = result["files"][0]
    assert verified["status"] != "error", verified["message"]
    assert runs_in(verified["python"], install) and verified["packages"]["claude-mpm"] == "3.8.1"
    assert "from ~/.claude/settings.json" in run.stderr


@pytest.mark.deploy
def test_5x_wrapper_in_site_packages_and_in_pipx(install, bare_python, required, tmp_path):
    """claude-hook-handler.sh of 5.6: in a plain site-packages it takes python3 from PATH (whose claude_mpm
    then runs); in pipx's venv it takes that venv's own python, whatever python3 PATH finds."""
    release = required(corpus.unpacked, "5.6.30") / "claude_mpm"
    plain = tmp_path / "plain/lib/python3.11/site-packages/claude_mpm"
    shutil.copytree(release / "scripts", plain / "scripts")
    pipx = tmp_path / "home/.local/pipx/venvs/claude-mpm"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(pipx)], check=True)
    site = next(pipx.glob("lib/python*/site-packages"))
    shutil.copytree(release, site / "claude_mpm")
    hooks = {
        "Stop": [{"hooks": [{"type": "command", "command": str(plain / "scripts/claude-hook-handler.sh")}]}],
        "SubagentStop": [
            {"hooks": [{"type": "command", "command": str(site / "claude_mpm/scripts/claude-hook-handler.sh")}]}
        ],
    }
    write_json(tmp_path / "home/.claude/settings.json", {"hooks": hooks})

    found = discover(tmp_path, environment(tmp_path / "home", install / "bin"))
    in_site_packages, in_pipx = found.targets[:2]
    assert in_site_packages.error is None and runs_in(in_site_packages.python, install)
    assert same(in_site_packages.handler, handler_of(install))  # the claude_mpm its python imports
    assert in_pipx.error is None and runs_in(in_pipx.python, pipx)
    assert same(in_pipx.handler, site / "claude_mpm/hooks/claude_hooks/hook_handler.py")
    with_bare_python3 = discover(tmp_path, environment(tmp_path / "home", bare_python.parent)).targets
    assert "cannot import claude_mpm" in with_bare_python3[0].error
    assert with_bare_python3[1].error is None and runs_in(with_bare_python3[1].python, pipx)


def test_nothing_found_says_where_it_looked(tmp_path, monkeypatch, capsys):
    from fixer.cli import main

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("fixer.install.discovery._this_interpreter", lambda: None)  # whatever this venv holds
    assert main(["check", "--installed"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("fix-memory-leaks: error: no claude-mpm hook found: ~/.claude/settings.json: no such")
    assert "no claude-mpm command on PATH" in error and "--installed --python PATH" in error
    assert "\n" not in error


@pytest.mark.deploy
def test_verify_runs_a_source_checkouts_hook_with_the_wrappers_pythonpath(install, required, tmp_path):
    """4.1's claude-hook-handler.sh in a checkout runs ``python -m claude_mpm...`` with the checkout's src in front
    of PYTHONPATH: verify's hooks (and its long-lived run) import the checkout's handler, not the venv's copy."""
    scripts = required(corpus.unpacked, "4.1.10") / "claude_mpm/scripts"
    checkout = tmp_path / "checkout"
    shutil.copytree(handler_of(install).parents[2], checkout / "src/claude_mpm")  # 3.8.1's code, in a checkout
    shutil.copy(scripts / "claude-hook-handler.sh", checkout / "src/claude_mpm/scripts")
    (checkout / ".venv").symlink_to(install, target_is_directory=True)
    handler = checkout / "src/claude_mpm/hooks/claude_hooks/hook_handler.py"
    marks = tmp_path / "imported-from-the-checkout"
    source = handler.read_text()
    handler.write_text(source.replace("\nimport json\n", f"\nimport json\nopen({str(marks)!r}, 'a').write('x')\n", 1))
    home = tmp_path / "home"
    wrapper = checkout / "src/claude_mpm/scripts/claude-hook-handler.sh"
    write_json(home / ".claude/settings.json", settings_4x(str(wrapper)))

    run = run_tool(home, tmp_path, "verify", "--installed", "--events", "1", "--format", "json", path=[install / "bin"])
    result = json.loads(run.stdout)
    verified = result["files"][0]
    assert verified["status"] != "error", verified["message"]
    assert same(verified["path"], handler) and "-m" in verified["hook"]["command"]
    per_process_hooks = sum(len(run["hook_seconds"]) for run in verified["per_process"].values())
    assert per_process_hooks >= 3 and marks.read_text().count("x") >= per_process_hooks  # and the long-lived run's
