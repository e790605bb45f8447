"""Every real claude-mpm release, as downloaded from the package index (issue 3).

Pre-fix releases are patched completely and correctly; fixed and later releases are left
byte-identical. These tests need the corpus and fail (not skip) without it when CI is set.
"""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import corpus
from codemods.engine import assess
from codemods.fixes.plan import UPSTREAM_REASON
from codemods.fixes.registry import FIX_NAMES
from codemods.reading.shape import CLEANUP_METHOD, TRACKED_COLLECTIONS
from codemods.settings import Settings
from codemods.status import FileStatus, FixStatus
from fixer.cli import main
from fixer.patch.pipeline import apply_file, check_file
from fixer.verify.driver import wrapper_variables
from tests.helpers_pyflakes import undefined_names

pytestmark = pytest.mark.corpus


@pytest.fixture(scope="module")
def patched_corpus(releases, tmp_path_factory):
    """Each pre-fix release patched once through the real pipeline: version -> (path, result)."""
    root = tmp_path_factory.mktemp("corpus")
    patched = {}
    for version in corpus.PRE_FIX:
        target = root / version / "hook_handler.py"
        target.parent.mkdir()
        shutil.copyfile(releases[version], target)
        patched[version] = (target, apply_file(target, FIX_NAMES, Settings()))
    return patched


@pytest.mark.parametrize("version", corpus.PRE_FIX)
def test_pre_fix_release_is_patched_completely(version, patched_corpus, releases):
    target, result = patched_corpus[version]
    assert result.status == FileStatus.PATCHED, result.message
    _, before = assess(releases[version].read_bytes())
    for fix in result.fixes:
        if before[fix.name].status == FixStatus.PENDING:
            assert fix.status == FixStatus.APPLIED, fix
        else:
            assert fix.status == FixStatus.NOT_APPLICABLE and fix.reason, fix
    assert Path(result.backup).read_bytes() == releases[version].read_bytes()
    assert check_file(target, FIX_NAMES).status == FileStatus.OK


@pytest.mark.parametrize("version", corpus.PRE_FIX)
def test_patched_release_introduces_no_undefined_name(version, patched_corpus, releases):
    target, _ = patched_corpus[version]
    assert undefined_names(target.read_bytes()) <= undefined_names(releases[version].read_bytes())


@pytest.mark.parametrize("version", corpus.PRE_FIX)
def test_cleanup_reads_only_what_init_sets(version, patched_corpus):
    tree = ast.parse(patched_corpus[version][0].read_bytes())
    handler = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ClaudeHookHandler")
    methods = {n.name: n for n in handler.body if isinstance(n, ast.FunctionDef)}
    init_sets = {
        node.attr
        for node in ast.walk(methods["__init__"])
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
    }
    if CLEANUP_METHOD not in methods:
        assert not init_sets & set(TRACKED_COLLECTIONS), "collections are tracked but no cleanup was added"
        return
    read = {
        node.attr
        for node in ast.walk(methods[CLEANUP_METHOD])
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"
    }
    assert read <= init_sets, read - init_sets


@pytest.mark.parametrize("version", corpus.PRE_FIX)
def test_second_apply_changes_nothing(version, patched_corpus):
    target, _ = patched_corpus[version]
    before = target.read_bytes()
    result = apply_file(target, FIX_NAMES, Settings())
    assert result.status == FileStatus.ALREADY_FIXED and target.read_bytes() == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["hook_handler.py", "hook_handler.py.backup"]


IMPORT_AND_RUN = """
import importlib.util, io, json, sys
spec = importlib.util.spec_from_file_location("patched_hook_handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
for _ in range(3):
    sys.stdin = io.StringIO(json.dumps({"hook_event_name": "Stop", "session_id": "s", "cwd": "."}))
    try:
        module.main()
    except SystemExit:
        pass
assert module._global_handler is not None
"""


@pytest.mark.parametrize("version", corpus.PRE_FIX)
def test_patched_release_imports_and_answers(version, patched_corpus, tmp_path):
    """Imported next to its own claude_mpm package, the patched handler runs main() three times."""
    target, _ = patched_corpus[version]
    environment = {
        **os.environ,
        "PYTHONPATH": str(corpus.unpacked(version)),
        **wrapper_variables(9),  # as hook_wrapper.sh sets it; nothing listens on port 9: the pool must give up quietly
        "HOME": str(tmp_path),
    }
    run = subprocess.run(
        [sys.executable, "-c", IMPORT_AND_RUN, str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.count('"action": "continue"') == 3, run.stdout[-500:]


@pytest.mark.parametrize("version", corpus.LEFT_ALONE)
def test_fixed_release_is_left_byte_identical(version, releases, tmp_path, capsys):
    target = tmp_path / "hook_handler.py"
    shutil.copyfile(releases[version], target)
    assert main(["apply", str(target), "--format", "json"]) == 0
    assert target.read_bytes() == releases[version].read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hook_handler.py"]
    out = capsys.readouterr().out
    # A bare copy of 4.1.0's handler shows on its own that its events never leave the process: never "fixed".
    status = FileStatus.BROKEN_UPSTREAM if version == "4.1.0" else FileStatus.ALREADY_FIXED
    assert f'"status": "{status}"' in out and UPSTREAM_REASON.split(" (")[0] in out
    assert main(["check", str(target)]) == (1 if status == FileStatus.BROKEN_UPSTREAM else 0)  # check's gate fails


def test_unrecognised_handler_is_refused_untouched(releases, tmp_path, capsys):
    target = tmp_path / "hook_handler.py"
    original = releases["3.8.1"].read_bytes().replace(b"handler = ClaudeHookHandler()", b"handler = make_handler()")
    target.write_bytes(original)
    assert main(["apply", str(target)]) == 2
    assert target.read_bytes() == original and sorted(p.name for p in tmp_path.iterdir()) == ["hook_handler.py"]
    error = capsys.readouterr().err
    assert "main() does not create ClaudeHookHandler()" in error and str(target) in error
    assert FileStatus.UNSUPPORTED in error


def test_release_table_in_readme_matches_the_tool(releases):
    """The README's release-by-release table is what the tool really does."""
    readme = (corpus.ROOT / "README.md").read_text()
    missing = [version for version in corpus.ALL_RELEASES if corpus.release_row(version) not in readme]
    assert not missing, "regenerate the table with `python -m bench.corpus`"
