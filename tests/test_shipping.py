"""Where the tool ships to: the code it injects stays valid Python 3.8 (claude-mpm supports 3.8), pre-commit's
own ``try-repo`` runs both hooks on a vendored handler, and the GitHub Action's steps work as a runner runs them."""

from __future__ import annotations

import ast
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import venv
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from bench import corpus
from codemods.engine import fix_source
from codemods.fixes.registry import FIX_NAMES
from tests.terminal import ROOT
from tests.test_cli_ci import _pip_install, annotations

pytestmark = pytest.mark.corpus

# ---------------------------------------------------------------- Python 3.8


def python_3_8() -> str | None:
    """A Python 3.8 that really runs, on PATH or in pyenv (the shim of a version pyenv has not selected fails)."""
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = [shutil.which("python3.8"), *sorted(glob.glob(f"{pyenv_root}/versions/3.8.*/bin/python3.8"))]
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", ""], capture_output=True).returncode == 0:
            return candidate
    return None


@pytest.fixture(scope="module")
def patched_pre_fix(releases, tmp_path_factory) -> dict[str, Path]:
    """Every pre-fix release through ``fix_source``, written out: version -> patched file."""
    folder = tmp_path_factory.mktemp("patched")
    patched = {}
    for version in corpus.PRE_FIX:
        outcome = fix_source(releases[version].read_bytes())
        assert outcome.changed, version
        patched[version] = folder / f"{version}.py"
        patched[version].write_bytes(outcome.source)
    return patched


def test_patched_releases_parse_with_python_3_8_grammar(patched_pre_fix):
    for version, path in patched_pre_fix.items():
        try:
            ast.parse(path.read_bytes(), filename=str(path), feature_version=(3, 8))
        except SyntaxError as error:
            pytest.fail(f"claude-mpm {version} patched is not Python 3.8: {error}")


COMPILE_EACH = "import sys\nfor path in sys.argv[1:]:\n    compile(open(path, 'rb').read(), path, 'exec')\n"


def test_patched_releases_compile_under_python_3_8(patched_pre_fix):
    python = python_3_8()
    if python is None:
        pytest.skip("no Python 3.8 interpreter on this machine")
    paths = [str(path) for path in patched_pre_fix.values()]
    result = subprocess.run([python, "-c", COMPILE_EACH, *paths], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------- pre-commit try-repo


def test_pre_commit_try_repo_checks_then_patches_a_vendored_handler(tmp_path, releases):
    """The check hook fails, the apply hook patches (pre-commit fails the run: files changed), then check passes."""
    project = tmp_path / "project"
    vendored = project / "vendor" / "claude_mpm" / "hooks" / "claude_hooks" / "hook_handler.py"
    vendored.parent.mkdir(parents=True)
    shutil.copyfile(releases["3.8.1"], vendored)
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run(["git", "add", "."], cwd=project, check=True)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "NO_COLOR": "1"}

    def try_repo(*hook: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), *hook, "--all-files"]
        return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=600)

    both = try_repo()  # every hook of .pre-commit-hooks.yaml, in its order: check, then apply
    assert both.returncode == 1, both.stdout + both.stderr
    assert re.search(r"memory-leak check\.+Failed", both.stdout), both.stdout
    assert re.search(r"memory-leak fix\.+Failed", both.stdout), both.stdout
    assert "files were modified by this hook" in both.stdout
    assert vendored.with_name("hook_handler.py.backup").read_bytes() == releases["3.8.1"].read_bytes()

    check = try_repo("fix-memory-leaks")
    assert check.returncode == 0, check.stdout + check.stderr
    assert re.search(r"memory-leak check\.+Passed", check.stdout), check.stdout


# ---------------------------------------------------------------- the GitHub Action

EXPRESSION = re.compile(r"\$\{\{\s*([\w.]+)\s*\}\}")


def run_action(inputs: Mapping[str, str], runner_temp: Path, workspace: Path) -> list[subprocess.CompletedProcess]:
    """Run action.yml's steps as a runner does: expressions substituted, each ``run:`` by bash with the step's
    env, stopping at the first step that fails. Returns each step's result."""
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    assert set(inputs) <= set(action["inputs"])
    context = {f"inputs.{name}": str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    context.update({f"inputs.{name}": value for name, value in inputs.items()})
    context.update({"github.action_path": str(ROOT), "runner.temp": str(runner_temp)})

    def substitute(text: str) -> str:
        return EXPRESSION.sub(lambda match: context[match[1]], text)

    results = []
    for number, step in enumerate(action["runs"]["steps"]):
        assert step["shell"] == "bash"
        script = runner_temp / f"step-{number}.sh"
        script.write_text(substitute(step["run"]))
        env = {**os.environ, "RUNNER_TEMP": str(runner_temp)}
        env.update({name: substitute(str(value)) for name, value in step.get("env", {}).items()})
        command = ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)]  # GitHub's `shell: bash`
        results.append(subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True, timeout=600))
        if results[-1].returncode != 0:
            break
    return results


def test_action_gates_then_patches_a_real_claude_mpm_install(tmp_path, releases):
    """check fails with one annotation per fix, apply patches, check passes, verify proves the hook; a bad mode
    is refused."""
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    original = _pip_install(python, "3.8.1")
    handler = next((tmp_path / "venv").glob("lib/python*/site-packages/" + corpus.HANDLER_IN_WHEEL))
    runner_temp, workspace = tmp_path / "runner-temp", tmp_path / "workspace"
    runner_temp.mkdir()
    workspace.mkdir()

    def action(mode: str) -> list[subprocess.CompletedProcess]:
        return run_action({"mode": mode, "python": str(python)}, runner_temp, workspace)

    install, gate = action("check")
    assert install.returncode == 0, install.stderr
    assert install.stdout.startswith("fix-memory-leaks ")
    assert gate.returncode == 1, gate.stderr
    assert [(kind, properties["file"]) for kind, properties, _ in annotations(gate.stdout)] == [
        ("error", str(handler))
    ] * len(FIX_NAMES)

    _, patch = action("apply")
    assert patch.returncode == 0, patch.stderr
    assert "1 patched" in patch.stderr
    assert handler.with_name("hook_handler.py.backup").read_bytes() == original
    _, gate = action("check")
    assert gate.returncode == 0, gate.stdout + gate.stderr
    # The release went in without its dependencies: verify names what the hook lacks and how to get it.
    _, proof = action("verify")
    assert proof.returncode == 2
    install_hint = re.search(r"install them with: (.+)$", proof.stderr, re.MULTILINE)
    assert install_hint and "python-socketio" in install_hint[1], proof.stderr
    subprocess.run([*shlex.split(install_hint[1]), "-q"], check=True, capture_output=True, timeout=600)
    _, proof = action("verify")
    assert proof.returncode == 0, proof.stdout + proof.stderr
    assert f"{handler}: pass" in proof.stderr

    _, refused = action("fix")
    assert refused.returncode == 2
    assert refused.stdout.startswith("::error title=fix-memory-leaks::mode must be check, apply or verify")


def test_action_installs_from_its_own_checkout_and_checks_the_version_asked(tmp_path):
    """The tool is not on the package index: the action never installs from there (issue 25, item 1); a ``version``
    that is not its checkout's fails the step, saying how to pin one."""
    steps = yaml.safe_load((ROOT / "action.yml").read_text())["runs"]["steps"]
    assert not any("fix-memory-leaks==" in step["run"] for step in steps)
    assert "package index" in yaml.safe_load((ROOT / "action.yml").read_text())["inputs"]["version"]["description"]
    runner_temp, workspace = tmp_path / "runner-temp", tmp_path / "workspace"
    runner_temp.mkdir()
    workspace.mkdir()
    (wrong,) = run_action({"version": "0.0.1", "python": sys.executable}, runner_temp, workspace)
    assert wrong.returncode == 2
    assert "::error title=fix-memory-leaks::version 0.0.1 asked, but this action's checkout is" in wrong.stdout
    assert "pin the release in uses:" in wrong.stdout
    from fixer import __version__

    right = run_action({"version": __version__, "python": sys.executable}, runner_temp, workspace)
    assert right[0].returncode == 0 and right[0].stdout.startswith(f"fix-memory-leaks {__version__}")
