"""The fix registry: one record per fix, and what is derived from it."""

import subprocess
import sys

import pytest

from codemods.fixes import connection_pool, plan
from codemods.fixes.registry import BY_NAME, FIX_NAMES, FIXES, resolve_selection
from codemods.reading.shape import inspect
from tests.codemod_case import SOCKETIO_HANDLER
from tests.helpers import ROOT


def test_the_fix_names_are_the_contracts_in_engine_order():
    assert FIX_NAMES == ("connection-pool", "singleton", "limits", "periodic-cleanup", "teardown")


@pytest.mark.parametrize("fix", FIXES, ids=FIX_NAMES)
def test_each_transformer_finds_its_own_record(fix):
    assert fix.transformer_class().FIX is fix


@pytest.mark.parametrize("fix", FIXES, ids=FIX_NAMES)
def test_each_planner_plans_only_its_own_steps(fix):
    planned = fix.plan(inspect(SOCKETIO_HANDLER.encode()))
    assert planned.name == fix.name and all(isinstance(step, fix.steps) for step in planned.steps)
    assert set(planned.imports) <= set(fix.imports)


def test_a_step_of_another_fix_is_refused_not_skipped():
    with pytest.raises(TypeError, match=r"teardown: .*PoolStep\.USE_POOL.* is not one of its steps"):
        plan.verdict(BY_NAME["teardown"], [connection_pool.PoolStep.USE_POOL])


def test_select_pulls_in_what_a_fix_requires_from_the_records():
    selected, notes = resolve_selection(["teardown", "periodic-cleanup"])
    assert selected == ("connection-pool", "limits", "periodic-cleanup", "teardown")
    assert notes == [
        "teardown needs connection-pool: selected it too",
        "periodic-cleanup needs limits: selected it too",
    ]


def test_the_fixes_listing_imports_no_libcst():
    code = "import sys; from fixer.cli import main; main(['fixes']); print('libcst' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert run.stdout.splitlines()[-1] == "False"
    for fix in FIXES:
        assert fix.description in run.stdout


def test_verify_expectations_come_from_the_fix_records_and_are_json():
    import json

    from codemods.fixes.registry import verify_expectations

    expected = verify_expectations()
    assert (
        json.loads(json.dumps(expected))
        == expected
        == {
            "handler_class": "ClaudeHookHandler",
            "pool_attribute": "connection_pool",
            "cleanup_interval": "CLEANUP_INTERVAL_EVENTS",
            "size_limits": {
                "active_delegations": "MAX_DELEGATION_TRACKING",
                "delegation_requests": "MAX_DELEGATION_TRACKING",
                "pending_prompts": "MAX_PROMPT_TRACKING",
                "_git_branch_cache": None,
            },
        }
    )
    expected["size_limits"].clear()  # a copy: the records stay as they are
    assert verify_expectations()["size_limits"]


@pytest.mark.parametrize("fix", FIXES, ids=FIX_NAMES)
def test_each_fix_name_is_a_literal_in_its_own_package_only(fix):
    quoted = (f'"{fix.name}"', f"'{fix.name}'")
    sources = [*(ROOT / "codemods").rglob("*.py"), *(ROOT / "bench").rglob("*.py")]
    spelled = sorted(str(path.relative_to(ROOT)) for path in sources if any(q in path.read_text() for q in quoted))
    package = fix.transformer.split(".")[2]
    assert spelled == [f"codemods/fixes/{package}/__init__.py"]
