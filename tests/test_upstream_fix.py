"""claude-mpm's own fix as released in 3.9.4-3.9.11 (issue 16): flagged by ``check``, repaired by ``apply``.

Every such release on the package index, through the real pipeline: detected by structure (a
layout name of its own), pending with reasons, repaired completely with every guarantee of the
other patches, and, run as a script or by a long-lived caller, replying once per hook.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import corpus
from codemods.engine import assess, fix_source
from codemods.fixes.registry import FIX_NAMES
from codemods.reading.shape import POOL_CLASS, POOL_REVISION, inspect
from codemods.settings import Settings
from fixer.cli import main
from fixer.patch import pipeline
from tests.helpers_pyflakes import undefined_names

pytestmark = pytest.mark.corpus

# Statuses as the command line documents them (the JSON values).
PENDING, PRESENT, APPLIED, PATCHED, ALREADY_FIXED, OK = (
    "pending",
    "present",
    "applied",
    "patched",
    "already-fixed",
    "ok",
)

VARIANTS = {"3.9.4": "3.9.4-3.9.8", "3.9.11": "3.9.9-3.9.11"}


def _code_and_imports(source: bytes):
    """The module without its imports, and its imports sorted: fixes may add the same import in another order."""
    tree = ast.parse(source)
    imports = sorted(ast.dump(node) for node in tree.body if isinstance(node, ast.Import))
    tree.body = [node for node in tree.body if not isinstance(node, ast.Import)]
    return ast.dump(tree), imports


def variant_of(version: str) -> str:
    return VARIANTS["3.9.11" if version in ("3.9.9", "3.9.11") else "3.9.4"]


@pytest.fixture(scope="module")
def repaired(releases, tmp_path_factory):
    """Each release of claude-mpm's own fix repaired once through the real pipeline: version -> (path, result)."""
    root = tmp_path_factory.mktemp("upstream")
    done = {}
    for version in corpus.UPSTREAM_BROKEN:
        target = root / version / "hook_handler.py"
        target.parent.mkdir()
        shutil.copyfile(releases[version], target)
        done[version] = (target, pipeline.apply_file(target, FIX_NAMES, Settings()))
    return done


@pytest.mark.parametrize("version", corpus.UPSTREAM_BROKEN)
def test_check_flags_the_release_with_reasons(version, releases, capsys):
    assert main(["check", str(releases[version]), "--format", "json"]) == 1
    (entry,) = json.loads(capsys.readouterr().out)["files"]
    assert entry["status"] == "pending"
    assert entry["layout"].startswith(f"claude-mpm's own fix {variant_of(version)} ")
    pending = {fix["name"]: fix["reason"] for fix in entry["fixes"] if fix["status"] == "pending"}
    assert set(pending) == set(FIX_NAMES) - ({"singleton"} if variant_of(version) == "3.9.4-3.9.8" else set())
    assert "finalization" in pending["connection-pool"] and "immediate reconnection" in pending["connection-pool"]
    if "singleton" in pending:
        assert "three replies" in pending["singleton"] and "long-lived" in pending["singleton"]


def test_layouts_are_told_apart_by_structure(releases):
    """Pre-fix, ours, upstream's two broken variants and 4.x+ all get different names; no version string is read."""
    names = {
        version: inspect(releases[version].read_bytes()).layout for version in ("3.8.1", "3.9.4", "3.9.11", "4.1.0")
    }
    names["ours 3.8.1"] = inspect(fix_source(releases["3.8.1"].read_bytes()).source).layout
    assert names["ours 3.8.1"] == names["3.8.1"], names  # a patch of ours keeps its release's layout
    assert len(set(names.values())) == 4, names
    renamed = releases["3.9.11"].read_bytes().replace(b"3.9", b"9.9")
    assert inspect(renamed).layout == names["3.9.11"]


@pytest.mark.parametrize("version", corpus.UPSTREAM_BROKEN)
def test_release_is_repaired_completely(version, repaired, releases):
    target, result = repaired[version]
    assert result.status == PATCHED, result.message
    _, before = assess(releases[version].read_bytes())
    for fix in result.fixes:
        assert fix.status == (APPLIED if before[fix.name].status == PENDING else PRESENT), fix
    assert Path(result.backup).read_bytes() == releases[version].read_bytes()
    assert pipeline.check_file(target, FIX_NAMES).status == OK
    shape, plans = assess(target.read_bytes())
    assert shape.upstream is not None and variant_of(version) in shape.layout
    assert {plan.status for plan in plans.values()} == {PRESENT}


@pytest.mark.parametrize("version", corpus.UPSTREAM_BROKEN)
def test_repaired_release_compiles_on_python_3_8_with_no_new_undefined_name(version, repaired, releases):
    source = repaired[version][0].read_bytes()
    compile(source, version, "exec", dont_inherit=True)
    tree = ast.parse(source, feature_version=(3, 8))
    assert undefined_names(source) <= undefined_names(releases[version].read_bytes())
    pools = [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef) and node.name == POOL_CLASS]
    assert len(pools) == 1
    revision = [n.value for n in pools[0].body if isinstance(n, ast.Assign) and n.targets[0].id == "REVISION"]
    assert [constant.value for constant in revision] == [POOL_REVISION]  # ours, not theirs


@pytest.mark.parametrize("version", corpus.UPSTREAM_BROKEN)
def test_second_apply_is_a_no_op_and_restore_gives_the_release_back(version, repaired, releases, capsys):
    target, _ = repaired[version]
    before = target.read_bytes()
    assert pipeline.apply_file(target, FIX_NAMES, Settings()).status == ALREADY_FIXED
    assert target.read_bytes() == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["hook_handler.py", "hook_handler.py.backup"]
    copy = target.parent.parent / f"{version}-restored" / "hook_handler.py"
    shutil.copytree(target.parent, copy.parent)
    assert main(["restore", str(copy), "--quiet"]) == 0
    assert copy.read_bytes() == releases[version].read_bytes()


def test_dry_run_prints_the_repair_and_writes_nothing(releases, tmp_path, capsys):
    target = tmp_path / "hook_handler.py"
    shutil.copyfile(releases["3.9.11"], target)
    assert main(["apply", str(target), "--dry-run"]) == 0
    diff = capsys.readouterr().out
    assert "-    atexit.register(cleanup_handler)" in diff and "+class SocketIOConnectionPool:" not in diff
    assert "-    def _create_connection(self, port):" in diff
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hook_handler.py"]
    assert target.read_bytes() == releases["3.9.11"].read_bytes()


def test_a_partial_repair_is_completed_never_taken_for_upstreams_code(releases):
    """--select one fix, then a full run: the same code as one full run, and check never calls the half ok."""
    original = releases["3.9.11"].read_bytes()
    whole = fix_source(original).source
    for first in FIX_NAMES:
        partial = fix_source(original, (first,)).source
        shape, plans = assess(partial)
        assert shape.upstream is not None, first
        assert any(plan.status == PENDING for plan in plans.values()), first
        completed = fix_source(partial).source
        assert _code_and_imports(completed) == _code_and_imports(whole), first


def test_a_failed_write_leaves_the_release_as_it_was(releases, tmp_path, monkeypatch, capsys):
    target = tmp_path / "hook_handler.py"
    shutil.copyfile(releases["3.9.4"], target)

    def fail(source, destination):
        raise OSError(28, "No space left on device (simulated)")

    monkeypatch.setattr(os, "replace", fail)
    assert main(["apply", str(target)]) == 2
    monkeypatch.undo()
    assert target.read_bytes() == releases["3.9.4"].read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hook_handler.py"]
    error = capsys.readouterr().err
    assert str(target) in error and "(simulated)" in error


def test_limits_come_from_the_config(releases):
    settings = Settings(max_delegation_tracking=7, cleanup_interval_events=3)
    tree = ast.parse(fix_source(releases["3.9.4"].read_bytes(), settings=settings).source)
    constants = {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }
    assert constants["MAX_DELEGATION_TRACKING"] == 7 and constants["CLEANUP_INTERVAL_EVENTS"] == 3
    attributes = {
        node.targets[0].attr: node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute)
    }
    assert isinstance(attributes["MAX_DELEGATION_TRACKING"], ast.Name)  # the attribute reads the constant


# A long-lived caller: main() several times in one process; then a handler stuck in a hook, until the alarm.
CALLER = """
import importlib.util, io, json, sys, time, uuid
spec = importlib.util.spec_from_file_location("hook_handler_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
event = json.dumps({"hook_event_name": "Stop", "session_id": "s", "cwd": "."})
for call in range(3):
    sys.stdin = io.StringIO(event)
    module.main()
    print("call returned", call, file=sys.stderr)
handler = module._global_handler
limit = handler.MAX_DELEGATION_TRACKING  # an attribute in both, set from the module constant once repaired
keys = [str(uuid.uuid4()) for _ in range(3 * limit)]
handler.active_delegations.update((key, {}) for key in keys)
handler._cleanup_old_entries()
kept = list(handler.active_delegations)
print("newest kept", kept == keys[-limit:], file=sys.stderr)
if sys.argv[2] == "stuck":
    module.ClaudeHookHandler._route_event = lambda self, event: time.sleep(60)
    sys.stdin = io.StringIO(event)
    module.main()
    print("stuck call returned", file=sys.stderr)
"""


def run_caller(handler: Path, version: str, stuck: bool, tmp_path: Path) -> subprocess.Popen:
    environment = {
        **os.environ,
        "PYTHONPATH": str(corpus.unpacked(version)),
        "CLAUDE_MPM_HOOK_DEBUG": "false",
        "CLAUDE_MPM_SOCKETIO_PORT": "9",  # nothing listens there
        "HOME": str(tmp_path),
    }
    command = [sys.executable, "-c", CALLER, str(handler), "stuck" if stuck else "calls"]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment, cwd=tmp_path
    )


def test_repaired_3_9_11_replies_once_per_call_survives_them_and_the_alarm(repaired, tmp_path):
    """Three main() calls and one stuck in a hook until the 10 s alarm: four replies, the process lives on."""
    process = run_caller(repaired["3.9.11"][0], "3.9.11", True, tmp_path)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr[-2000:]
    assert [json.loads(line) for line in stdout.splitlines()] == [{"action": "continue"}] * 4
    assert "stuck call returned" in stderr and "newest kept True" in stderr
    assert "Exception ignored" not in stderr


def test_upstreams_own_3_9_11_dies_at_the_first_call_and_3_9_4_keeps_the_wrong_entries(releases, tmp_path):
    """What the repair is measured against: the same caller on the releases as shipped."""
    dying = run_caller(releases["3.9.11"], "3.9.11", False, tmp_path)
    stdout, stderr = dying.communicate(timeout=60)
    assert "call returned" not in stderr and stdout.count('"continue"') >= 2
    sorting = run_caller(releases["3.9.4"], "3.9.4", False, tmp_path)
    _, stderr = sorting.communicate(timeout=60)
    assert "call returned 2" in stderr and "newest kept False" in stderr
