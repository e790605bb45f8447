"""claude-mpm's own hook (4.x and later) where it is known to break in real use (issue 17, item 5).

``check`` and ``apply`` leave such a handler byte-identical, never calling it ok: a note names the problem and the
release to upgrade to, in text, JSON and GitHub format; ``apply`` exits 0, ``check`` fails the gate with 1
(issue 25, item 7). The inputs are the real releases, as
their wheels install them (the handler with the wrapper and modules beside it); the deploy tests run the real
installs to show that what a note says is what the hook does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import corpus
from codemods.status import FileStatus
from fixer.cli import main
from fixer.install.breakage import WORKS_FROM, known_breakage, wrapper_runs
from fixer.patch.pipeline import check_file
from tests import hook_delivery

HOOKS = Path("claude_mpm/hooks/claude_hooks")
UPGRADE = f"upgrade to claude-mpm {WORKS_FROM} or later"
# One release at each end of each family that breaks, with what its note must name.
BROKEN = {
    "4.0.4": "fails with ImportError",
    "4.0.10": "fails with ImportError",
    "4.0.11": "the hook never connects",
    "4.0.34": "the hook never connects",
    "4.1.0": "in-process EventBus only",
    "4.1.2": "only queues it for a daemon thread",
    "4.1.3": "self.hook_handler._git_branch_cache",
    "4.1.8": "self.hook_handler._git_branch_cache",
}
WORKING = ("4.1.10", "5.9.10")


@pytest.fixture
def installed_tree(required, tmp_path):
    """A copy of a release as pip lays it out, as far as its hook cares: claude_mpm/hooks/claude_hooks and
    claude_mpm/core (the connection pool of 4.1.x) in a site-packages-like folder; returns the handler path."""

    def make(version: str) -> Path:
        unpacked = required(corpus.unpacked, version)
        site = tmp_path / version
        for part in (HOOKS, Path("claude_mpm/core")):
            if (unpacked / part).is_dir():
                shutil.copytree(unpacked / part, site / part)
        return site / HOOKS / "hook_handler.py"

    return make


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.corpus
@pytest.mark.parametrize("version", sorted(BROKEN, key=lambda v: [int(x) for x in v.split(".")]))
def test_a_release_known_to_break_is_never_ok(version, installed_tree):
    handler = installed_tree(version)
    result = check_file(handler, ())
    assert result.status == FileStatus.BROKEN_UPSTREAM, result
    assert BROKEN[version] in result.note and result.note.endswith(UPGRADE), result.note
    assert 1 <= result.note_line <= len(handler.read_bytes().splitlines())


@pytest.mark.corpus
@pytest.mark.parametrize("version", WORKING)
def test_a_release_that_works_is_ok_without_a_note(version, installed_tree):
    result = check_file(installed_tree(version), ())
    assert (result.status, result.note) == (FileStatus.OK, "")


@pytest.mark.corpus
@pytest.mark.parametrize("version", ["4.0.4", "4.1.2", "4.1.3"])
def test_check_fails_and_apply_leaves_it_byte_identical_in_every_format(version, installed_tree, capsys):
    handler = installed_tree(version)
    site = handler.parents[3]
    before = snapshot(site)

    assert main(["apply", str(handler), "--format", "json"]) == 0
    applied = json.loads(capsys.readouterr().out)["files"][0]
    assert applied["status"] == FileStatus.BROKEN_UPSTREAM and applied["note"].endswith(UPGRADE)
    assert applied["backup"] is None

    assert main(["check", str(handler), "--format", "json"]) == 1
    checked = json.loads(capsys.readouterr().out)
    assert checked["files"][0]["note"] == applied["note"] and checked["summary"] == {FileStatus.BROKEN_UPSTREAM: 1}

    assert main(["check", str(handler), "--no-color"]) == 1
    err = capsys.readouterr().err
    assert f"{handler}: {FileStatus.BROKEN_UPSTREAM}" in err and f"note: {applied['note'][:40]}" in err
    assert ": ok" not in err and "upgrade claude-mpm" in err.splitlines()[-1]

    assert main(["check", str(handler), "--format", "github"]) == 1
    lines = capsys.readouterr().out.splitlines()
    warnings = [line for line in lines if line.startswith("::")]
    assert len(warnings) == 1 and warnings[0].startswith(f"::error file={handler},line=")
    assert f"title=fix-memory-leaks {FileStatus.BROKEN_UPSTREAM}::" in warnings[0] and warnings[0].endswith(UPGRADE)

    assert main(["apply", str(handler), "--dry-run"]) == 0
    assert capsys.readouterr().out == ""  # no diff
    assert snapshot(site) == before


@pytest.mark.corpus
def test_check_of_a_broken_release_never_imports_libcst(installed_tree):
    handler = installed_tree("4.1.3")
    code = "import sys; from fixer.cli import main; main(['check', sys.argv[1]]); print('libcst' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code, str(handler)], capture_output=True, text=True, cwd=corpus.ROOT, timeout=60
    )
    assert result.stdout.strip() == "False" and f"{handler}: {FileStatus.BROKEN_UPSTREAM}" in result.stderr, (
        result.stderr
    )


@pytest.mark.corpus
def test_the_wrapper_beside_the_handler_decides_whether_relative_imports_fail(installed_tree):
    handler = installed_tree("4.0.4")
    assert wrapper_runs(handler.parent) == "path"
    wrapper = handler.parent / "hook_wrapper.sh"
    by_module = wrapper.read_text().replace(
        '"$SCRIPT_DIR/hook_handler.py"', "-m claude_mpm.hooks.claude_hooks.hook_handler"
    )
    wrapper.write_text(by_module)
    assert wrapper_runs(handler.parent) == "module"
    assert "ImportError" not in check_file(handler, ()).note  # run as a module, its imports work
    wrapper.unlink()
    assert wrapper_runs(handler.parent) is None
    assert "ImportError" not in check_file(handler, ()).note  # nothing says how it is run


@pytest.mark.corpus
def test_the_websocket_note_says_what_is_installed_beside_it(installed_tree):
    handler = installed_tree("4.0.11")
    assert "is not installed beside it" in check_file(handler, ()).note
    websocket = handler.parents[3] / "websocket"
    websocket.mkdir()
    (websocket / "__init__.py").write_text("")
    note = check_file(handler, ()).note
    assert "websocket-client is installed beside it, yet most events are lost" in note
    alone = handler.parents[4] / "alone" / "hook_handler.py"  # a bare copy: nothing tells what is installed
    alone.parent.mkdir()
    shutil.copyfile(handler, alone)
    assert "without websocket-client" in check_file(alone, ()).note


@pytest.mark.corpus
def test_attributes_set_anywhere_in_the_handler_class_count(installed_tree):
    """4.1.10 sets the git-branch cache in __init__: adding exactly that to 4.1.8 takes its note away."""
    handler = installed_tree("4.1.8")
    source = handler.read_bytes()
    breakage = known_breakage(handler, source)
    assert breakage is not None and "_git_branch_cache" in breakage.problem
    anchor = b"        self.connection_manager = ConnectionManagerService()\n"
    assert anchor in source
    fixed = source.replace(
        anchor, anchor + b"        self._git_branch_cache = {}\n        self._git_branch_cache_time = {}\n"
    )
    assert known_breakage(handler, fixed) is None


# ---------------------------------------------------------------- real installs: the notes are true


def _installed_handler(python: Path) -> Path:
    return next(python.parents[1].glob(f"lib/python*/site-packages/{HOOKS}/hook_handler.py"))


@pytest.mark.deploy
@pytest.mark.parametrize(
    ("version", "delivers"),
    [
        pytest.param("4.0.4", False, id="4.0.4-import-error"),
        pytest.param("4.0.20", False, id="4.0.20-websocket-only"),
        pytest.param("4.1.1", False, id="4.1.1-event-bus-only"),
        pytest.param("4.1.5", False, id="4.1.5-attribute-error"),
        pytest.param("4.1.10", True, id="4.1.10-works"),
    ],
)
def test_what_check_says_is_what_the_installed_hook_does(version, delivers, required):
    """Run through its own wrapper, one process per event, against a dashboard on the hard-coded port (in a
    private network namespace): a release with a note delivers nothing; the one the notes recommend delivers
    every event."""
    if not hook_delivery.isolation_available():
        pytest.skip("no user + network namespace here (unshare -rnm): the hooks would reach port 8765 of this host")
    python = required(corpus.installed, version)
    result = check_file(_installed_handler(python), ())
    figures = hook_delivery.delivery(python, events=4)
    received = figures["socketio"] + figures["http"]
    assert all(reply == '{"action": "continue"}' for reply in figures["replies"]), figures
    if delivers:
        assert (result.status, result.note) == (FileStatus.OK, "")
        assert received == figures["sent"], figures
    else:
        assert result.status == FileStatus.BROKEN_UPSTREAM and result.note.endswith(UPGRADE)
        assert received == 0, figures
