"""claude-mpm's own fix in a hand-written handler of its 3.9.9-3.9.11 shape (``fixtures/shape-3.9.9-upstream``).

No download needed: the structure is what is detected and repaired. The real releases are in
``tests/test_upstream_fix.py`` (corpus) and ``tests/test_upstream_deploy.py`` (real installs).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from codemods.engine import assess, fix_source
from codemods.fixes.registry import FIX_NAMES
from fixer.cli import main
from tests.helpers_pyflakes import undefined_names

PENDING, PRESENT = "pending", "present"  # as the command line documents them
SHAPE = Path(__file__).resolve().parent.parent / "fixtures" / "shape-3.9.9-upstream"
ORIGINAL = (SHAPE / "claude_mpm" / "hooks" / "claude_hooks" / "hook_handler.py").read_bytes()
EXPECTED = (SHAPE / "expected_hook_handler.py").read_bytes()


@pytest.fixture
def handler(tmp_path) -> Path:
    target = tmp_path / "claude_mpm" / "hooks" / "claude_hooks" / "hook_handler.py"
    target.parent.mkdir(parents=True)
    target.write_bytes(ORIGINAL)
    return target


def test_check_reports_every_fix_pending_with_what_breaks(handler, capsys):
    assert main(["check", str(handler), "--format", "json"]) == 1
    (entry,) = json.loads(capsys.readouterr().out)["files"]
    assert entry["layout"].startswith("claude-mpm's own fix 3.9.9-3.9.11")
    reasons = {fix["name"]: fix["reason"] for fix in entry["fixes"] if fix["status"] == PENDING}
    assert set(reasons) == set(FIX_NAMES)
    assert "hangs" in reasons["connection-pool"] and "sys.exit(0)" in reasons["singleton"]
    assert "sort last" in reasons["periodic-cleanup"] and "finalization" in reasons["teardown"]


def test_apply_repairs_it_and_a_second_apply_and_restore_keep_their_promises(handler, capsys):
    assert main(["apply", str(handler), "--quiet"]) == 0
    assert handler.read_bytes() == EXPECTED
    assert handler.with_name("hook_handler.py.backup").read_bytes() == ORIGINAL
    assert main(["apply", str(handler), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"][0]["status"] == "already-fixed"
    assert main(["check", str(handler)]) == 0
    assert main(["restore", str(handler), "--quiet"]) == 0
    assert handler.read_bytes() == ORIGINAL


def test_the_repair_is_valid_python_3_8_and_uses_only_defined_names():
    ast.parse(EXPECTED, feature_version=(3, 8))
    assert undefined_names(EXPECTED) <= undefined_names(ORIGINAL)


def test_nothing_that_used_the_retried_client_is_left_behind():
    """The retry is taken out from the statement that asks the pool again to the end of its except block."""
    tree = ast.parse(EXPECTED)
    emit = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "_emit_socketio_event")
    (handler,) = [n for n in ast.walk(emit) if isinstance(n, ast.ExceptHandler)]
    assert [type(s) for s in handler.body] == [ast.Pass]


@pytest.mark.parametrize("first", FIX_NAMES)
def test_a_partial_repair_is_completed_on_the_next_run(first):
    partial = fix_source(ORIGINAL, (first,)).source
    shape, plans = assess(partial)
    assert shape.upstream is not None
    assert plans[first].status == PRESENT and any(plan.status == PENDING for plan in plans.values())
    assert fix_source(partial).source.count(b"class SocketIOConnectionPool") == 1
    assert {plan.status for plan in assess(fix_source(partial).source)[1].values()} == {PRESENT}


def test_a_pool_method_ours_lacks_is_refused_untouched(handler, capsys):
    source = ORIGINAL.replace(b"self.connection_pool.close_all()", b"self.connection_pool.drain()")
    handler.write_bytes(source)
    assert main(["apply", str(handler)]) == 2
    assert handler.read_bytes() == source
    assert sorted(p.name for p in handler.parent.iterdir()) == ["hook_handler.py"]
    assert "connection_pool.drain()" in capsys.readouterr().err


def test_without_its_pool_class_upstreams_singleton_is_left_alone():
    """4.x and later keep the pool elsewhere: nothing here is ours to change."""
    start = ORIGINAL.index(b"class SocketIOConnectionPool")
    end = ORIGINAL.index(b"_global_handler = None")
    refactored = ORIGINAL[:start] + ORIGINAL[end:]
    refactored = refactored.replace(b"SocketIOConnectionPool(max_connections=3)", b"None  # kept elsewhere")
    outcome = fix_source(refactored)
    assert not outcome.changed and outcome.source == refactored
