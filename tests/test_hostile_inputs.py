"""Hostile and unusual inputs: refused cleanly and untouched, or patched with their formatting intact.

A tool that edits files in site-packages must either patch a file correctly or leave it (and its
folder) exactly as it was, and say why in one line -- never a traceback, never a stray file.
"""

from __future__ import annotations

import json
import os
import stat
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench import corpus
from tests.helpers import (
    BOM,
    assert_no_duplicates,
    assert_preserved,
    can_create,
    cli,
    code_lines,
    fix_statuses,
    line_endings,
    make_handler,
    new_undefined_names,
    permissions_bind,
    refusal_lines,
    reindent,
    reorder_methods,
    snapshot,
    to_crlf,
    unprivileged_runner,
    with_bom,
    with_extra_comments,
)


def _without_handler_construction(source: bytes) -> bytes:
    """A real handler whose main() no longer builds the handler: a layout we do not know."""
    assert b"handler = ClaudeHookHandler()" in source
    return source.replace(b"handler = ClaudeHookHandler()", b"handler = make_handler()")


@dataclass(frozen=True)
class Refused:
    name: str
    content: object  # bytes, or a callable taking the real 3.2.1 handler
    reason: str  # a word or two the one-line message must contain


REFUSED_FILES = [
    Refused("does-not-parse", b"def broken(:\n    pass\n", "does not parse"),
    Refused("empty", b"", "empty"),
    Refused("only-blank-lines", b"\n\n   \n", "empty"),
    Refused("latin-1-bytes-in-utf-8", b"# caf\xe9 cr\xe8me\nclass ClaudeHookHandler:\n    pass\n", "not valid utf-8"),
    Refused("non-ascii-under-ascii-cookie", b"# -*- coding: ascii -*-\n# caf\xc3\xa9\nx = 1\n", "not valid ascii"),
    Refused("unknown-encoding-cookie", b"# -*- coding: klingon -*-\nx = 1\n", "encoding"),
    Refused("bom-contradicts-cookie", BOM + b"# -*- coding: latin-1 -*-\nx = 1\n", "encoding"),
    Refused("binary-with-nul-bytes", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary"),
    Refused("binary-without-nul-bytes", bytes(range(128, 256)) * 8, "not valid utf-8"),
    Refused("python-not-a-handler", b"import os\n\n\ndef main():\n    print(os.getcwd())\n", "not a claude-mpm"),
    Refused("handler-of-unknown-layout", _without_handler_construction, "unrecognised"),
]


@pytest.mark.parametrize("command", ["apply", "check"])
@pytest.mark.parametrize("case", REFUSED_FILES, ids=lambda case: case.name)
def test_refused_file_is_left_exactly_as_it_was(tmp_path, case, command):
    """Each input the tool cannot patch safely: exit 2, one line naming the file and the reason, folder unchanged."""
    content = case.content(corpus.handler("3.2.1")) if callable(case.content) else case.content
    handler = make_handler(tmp_path, content)
    before = snapshot(tmp_path)

    result = cli(command, str(handler), cwd=tmp_path)

    assert result.returncode == 2, result.stderr
    (line,) = refusal_lines(result, str(handler))
    assert case.reason in line
    assert snapshot(tmp_path) == before


def _dangling_link(tmp_path: Path) -> Path:
    link = tmp_path / "hook_handler.py"
    link.symlink_to(tmp_path / "gone.py")
    return link


def _folder_without_handler(tmp_path: Path) -> Path:
    """Python files, even one named hook_handler.py, but none where claude-mpm keeps its handler."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "hook_handler.py").write_bytes(corpus.handler("3.2.1"))
    (tmp_path / "pkg" / "other.py").write_text("x = 1\n")
    return tmp_path


REFUSED_PATHS = {
    "does-not-exist": (lambda tmp_path: tmp_path / "no" / "such" / "hook_handler.py", "no such file"),
    "dangling-symlink": (_dangling_link, "not a file or folder"),
    "folder-without-handler": (_folder_without_handler, "no hooks/claude_hooks/hook_handler.py"),
}


@pytest.mark.parametrize("command", ["apply", "check", "restore"])
@pytest.mark.parametrize("case", sorted(REFUSED_PATHS))
def test_path_without_handler_is_an_error(tmp_path, case, command):
    """A PATH that holds no handler is a CI step pointed at the wrong place: exit 2, one line, nothing written."""
    make_path, reason = REFUSED_PATHS[case]
    path = make_path(tmp_path)
    before = snapshot(tmp_path)

    result = cli(command, str(path), cwd=tmp_path)

    assert result.returncode == 2, result.stderr
    (line,) = refusal_lines(result, str(path))
    assert reason in line
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------- permissions


@pytest.fixture
def unprivileged():
    """A ``preexec_fn`` under which permission bits bind, even when the tests run as root."""
    runner = unprivileged_runner()
    if isinstance(runner, str):
        pytest.skip(runner)
    return runner


@pytest.mark.parametrize("command", ["apply", "check"])
def test_unreadable_file_is_refused(tmp_path, unprivileged, command):
    """A handler we may not read: exit 2 with the reason, nothing written next to it."""
    handler = make_handler(tmp_path, corpus.handler("3.2.1"), mode=0)
    if not permissions_bind(handler, unprivileged):
        pytest.skip("file permissions do not bind for this user")
    before = snapshot(tmp_path)

    result = cli(command, str(handler), cwd=tmp_path, preexec_fn=unprivileged)

    assert result.returncode == 2, result.stderr
    (line,) = refusal_lines(result, str(handler))
    assert "cannot read" in line and "Permission denied" in line
    assert snapshot(tmp_path) == before


@pytest.fixture
def read_only_folder(tmp_path, unprivileged):
    """A pristine 3.2.1 handler in a folder we may read but not write into."""
    handler = make_handler(tmp_path, corpus.handler("3.2.1"))
    os.chmod(handler.parent, 0o555)
    try:
        if can_create(handler.parent / "probe", unprivileged):
            pytest.skip("folder permissions do not bind for this user")
        yield handler
    finally:
        os.chmod(handler.parent, 0o755)


def test_folder_we_cannot_write_into_is_refused_by_apply(tmp_path, unprivileged, read_only_folder):
    """No backup can be written, so nothing is patched: exit 2 with the reason, folder unchanged."""
    before = snapshot(tmp_path)

    result = cli("apply", str(read_only_folder), cwd=tmp_path, preexec_fn=unprivileged)

    assert result.returncode == 2, result.stderr
    (line,) = refusal_lines(result, str(read_only_folder))
    assert "cannot write" in line and "Permission denied" in line
    assert snapshot(tmp_path) == before


def test_folder_we_cannot_write_into_can_still_be_checked(tmp_path, unprivileged, read_only_folder):
    """``check`` and ``apply --dry-run`` only read: a read-only install can still be audited."""
    before = snapshot(tmp_path)

    checked = cli("check", str(read_only_folder), cwd=tmp_path, preexec_fn=unprivileged)
    dry_run = cli("apply", "--dry-run", str(read_only_folder), cwd=tmp_path, preexec_fn=unprivileged)

    assert checked.returncode == 1, checked.stderr
    assert dry_run.returncode == 0, dry_run.stderr
    assert "+class SocketIOConnectionPool:" in dry_run.stdout
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------- inputs that must still be patched


def _latin1_with_cookie(source: bytes) -> bytes:
    """The handler declared latin-1, with non-ASCII latin-1 bytes in comments (after the shebang, if any)."""
    lines = source.splitlines(keepends=True)
    at = 1 if lines[0].startswith(b"#!") else 0
    lines[at:at] = [b"# -*- coding: latin-1 -*-\n", b"# R\xe9sum\xe9: gr\xfc\xdfe aus K\xf6ln, \xa9 caf\xe9\n"]
    return b"".join(lines)


VARIATIONS = {
    "crlf": to_crlf,
    "bom": with_bom,
    "latin-1-cookie": _latin1_with_cookie,
    "indent-2-spaces": lambda source: reindent(source, "  "),
    "indent-tabs": lambda source: reindent(source, "\t"),
    "extra-comments-and-blank-lines": with_extra_comments,
    "methods-reordered": reorder_methods,
    "crlf-bom-tabs-reordered": lambda source: to_crlf(with_bom(reindent(reorder_methods(source), "\t"))),
}
VARIATION_RELEASES = ("3.8.1", "3.2.1", "3.0.0")


@pytest.fixture(scope="module")
def patched_variations(tmp_path_factory):
    """Every variation of each release, patched by one ``apply`` over one folder, then ``check``ed."""
    try:
        corpus.fetch_all(VARIATION_RELEASES)
    except corpus.CorpusUnavailable as error:
        pytest.skip(f"real releases unavailable: {error}")
    root = tmp_path_factory.mktemp("variations")
    originals = {}
    for release in VARIATION_RELEASES:
        for name, vary in VARIATIONS.items():
            source = vary(corpus.handler(release))
            assert source != corpus.handler(release)
            originals[release, name] = (make_handler(root / f"{release}-{name}", source), source)
    applied = cli("apply", str(root), "--format", "json", cwd=root)
    checked = cli("check", str(root), "--format", "json", cwd=root)
    return originals, applied, checked


def _entry(result, path: Path) -> dict:
    (entry,) = [entry for entry in json.loads(result.stdout)["files"] if entry["path"].endswith(str(path))]
    return entry


@pytest.mark.parametrize("variation", sorted(VARIATIONS))
@pytest.mark.parametrize("release", VARIATION_RELEASES)
def test_variation_is_patched_with_its_formatting_kept(patched_variations, release, variation):
    """Line endings, BOM, encoding, indentation, comments and member order of the original all survive."""
    originals, applied, checked = patched_variations
    path, original = originals[release, variation]
    assert applied.returncode == 0, applied.stderr
    assert checked.returncode == 0, checked.stdout
    assert _entry(applied, path)["status"] == "patched"
    check = _entry(checked, path)
    assert check["status"] == "ok"
    done = {fix["name"] for fix in _entry(applied, path)["fixes"] if fix["status"] == "applied"}
    assert done and all(fix["status"] == "present" for fix in check["fixes"] if fix["name"] in done)

    patched = path.read_bytes()
    compile(patched, str(path), "exec", dont_inherit=True)
    assert not new_undefined_names(original, patched)
    assert line_endings(patched) == line_endings(original)
    assert patched.startswith(BOM) == original.startswith(BOM)
    assert_preserved(original, patched)
    assert_no_duplicates(patched)
    assert not _new_whitespace_only_lines(original, patched)
    assert path.with_name("hook_handler.py.backup").read_bytes() == original


def _new_whitespace_only_lines(original: bytes, patched: bytes) -> Counter:
    blank = lambda source: Counter(line for line in source.splitlines() if line.strip() == b"" and line)  # noqa: E731
    return blank(patched) - blank(original)


def test_injected_code_follows_the_files_indentation(patched_variations):
    """In a tab-indented handler, what we add is tab-indented too (no mix of tabs and spaces)."""
    originals, _, _ = patched_variations
    path, original = originals["3.8.1", "indent-tabs"]
    added = Counter(path.read_bytes().splitlines()) - Counter(original.splitlines())
    indented = [line for line in added if line[:1] in (b" ", b"\t") and line.strip()]
    assert indented and all(line.startswith(b"\t") for line in indented)


# ---------------------------------------------------------------- partial patches


def _full_apply_counts(source: bytes) -> Counter:
    from codemods.engine import fix_source

    return code_lines(fix_source(source).source)


@pytest.mark.parametrize("first", ["singleton", "limits", "connection-pool", "periodic-cleanup", "teardown"])
def test_partial_patch_of_ours_is_completed_without_duplicates(real_handler, first):
    """``--select FIX`` now, the rest later: the same code as one full run, nothing twice, one backup."""
    handler = real_handler("3.8.1")
    pristine = handler.read_bytes()

    partial = cli("apply", str(handler), "--select", first)
    assert partial.returncode == 0, partial.stderr
    assert cli("check", str(handler)).returncode == 1
    complete = cli("apply", str(handler))
    assert complete.returncode == 0, complete.stderr

    patched = handler.read_bytes()
    assert_no_duplicates(patched)
    assert code_lines(patched) == _full_apply_counts(pristine)
    assert sorted(p.name for p in handler.parent.iterdir()) == ["hook_handler.py", "hook_handler.py.backup"]
    assert handler.with_name("hook_handler.py.backup").read_bytes() == pristine
    statuses = fix_statuses(cli("check", str(handler), "--format", "json"))
    assert set(statuses.values()) == {"present"}


def _add_imports(source: bytes) -> bytes:
    return source.replace(b"import json\n", b"import json\nimport threading\nimport time\n", 1)


def _add_cleanup_method(source: bytes) -> bytes:
    method = (
        b"    def _cleanup_old_entries(self):\n"
        b"        # written by hand before the tool existed\n"
        b"        self.active_delegations.clear()\n\n"
    )
    return source.replace(b"    def handle(self):", method + b"    def handle(self):", 1)


def _add_pool_attribute(source: bytes) -> bytes:
    marker = b"        self.active_delegations = {}"
    assert marker in source
    pool = b"\n        self.connection_pool = SocketIOConnectionPool(max_connections=2)"
    return source.replace(marker, marker + pool, 1)


HAND_EDITS = {
    "threading-and-time-imported": (_add_imports, ("import threading", "import time")),
    "cleanup-method-written": (_add_cleanup_method, ("def _cleanup_old_entries",)),
    "pool-attribute-set": (_add_pool_attribute, ("self.connection_pool = SocketIOConnectionPool(",)),
}


@pytest.mark.parametrize("edit", sorted(HAND_EDITS))
def test_hand_edited_piece_is_used_not_duplicated(real_handler, edit):
    """A piece the user already added by hand is taken as done: the rest is added around it, once."""
    change, pieces = HAND_EDITS[edit]
    handler = real_handler("3.2.1")
    edited = change(handler.read_bytes())
    handler.write_bytes(edited)
    compile(edited, "edited", "exec")

    result = cli("apply", str(handler))

    assert result.returncode == 0, result.stderr
    patched = handler.read_bytes()
    compile(patched, str(handler), "exec", dont_inherit=True)
    assert not new_undefined_names(edited, patched) and not new_undefined_names(corpus.handler("3.2.1"), patched)
    assert_no_duplicates(patched)
    text = patched.decode()
    for piece in pieces:
        assert sum(line.strip().startswith(piece) for line in text.splitlines()) == 1, piece
    assert_preserved(edited, patched)
    assert cli("check", str(handler)).returncode == 0
    assert handler.with_name("hook_handler.py.backup").read_bytes() == edited
    assert stat.S_ISREG(os.lstat(handler).st_mode)
