"""What the safety tests share: folder snapshots, running the CLI, source variations, preservation checks."""

from __future__ import annotations

import ast
import io
import os
import stat
import subprocess
import sys
import tokenize
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from tests.helpers_pyflakes import undefined_names

ROOT = Path(__file__).resolve().parent.parent
BOM = b"\xef\xbb\xbf"
HANDLER_TAIL = Path("claude_mpm", "hooks", "claude_hooks", "hook_handler.py")


# ---------------------------------------------------------------- files and folders


def snapshot(folder: Path) -> dict[str, tuple[str, object, int]]:
    """Every entry under ``folder``: kind, content (bytes, or a link's target) and permission bits."""
    entries = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            info = os.lstat(path)
            relative = str(path.relative_to(folder))
            if stat.S_ISLNK(info.st_mode):
                entries[relative] = ("link", os.readlink(path), 0)
            elif stat.S_ISDIR(info.st_mode):
                entries[relative] = ("dir", None, stat.S_IMODE(info.st_mode))
            else:
                entries[relative] = ("file", _read_as_owner(path), stat.S_IMODE(info.st_mode))
    return entries


def _read_as_owner(path: Path) -> bytes:
    """Read even a file made unreadable for a test (we own it, so we may chmod it back for a moment)."""
    try:
        return path.read_bytes()
    except PermissionError:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        os.chmod(path, mode | stat.S_IRUSR)
        try:
            return path.read_bytes()
        finally:
            os.chmod(path, mode)


def code_lines(source: bytes) -> Counter[bytes]:
    """Non-blank lines, counted. An added import is the same line whichever fix added it, but it
    carries the mark of the fix that first needed it, so marks on import lines are left out."""
    return Counter(
        line.split(b"  # fix-memory-leaks:")[0] if line.lstrip().startswith(b"import ") else line
        for line in source.splitlines()
        if line.strip()
    )


def make_handler(root: Path, source: bytes, mode: int | None = None) -> Path:
    """Write ``source`` where claude-mpm keeps its handler under ``root``; returns the file."""
    target = root / HANDLER_TAIL
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source)
    if mode is not None:
        os.chmod(target, mode)
    return target


def stray_files(folder: Path) -> list[str]:
    """Temporary files a write left behind (ours are ``.NAME.XXXX.tmp``)."""
    return sorted(name for name in os.listdir(folder) if name.startswith(".") or name.endswith(".tmp"))


# ---------------------------------------------------------------- the command line


def _cli_process(args: Sequence[str], cwd: Path | None, preexec_fn=None) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items() if key != "FORCE_COLOR"}
    env.update(NO_COLOR="1", PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.Popen(
        [sys.executable, "-m", "fixer", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd or ROOT,
        env=env,
        preexec_fn=preexec_fn,
    )


def cli(*args: str, cwd: Path | None = None, preexec_fn=None) -> subprocess.CompletedProcess:
    """``python -m fixer ARGS`` in a fresh process (no colour, no terminal), as the user would run it."""
    process = _cli_process(args, cwd, preexec_fn)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def spawn_cli(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    """Like ``cli`` but started and left running (for concurrent runs)."""
    return _cli_process(args, cwd)


# Capabilities that let root ignore file permissions: CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER.
_FILE_CAPABILITIES = (1, 2, 3)
_PR_CAPBSET_DROP = 24


def _drop_file_capabilities() -> None:  # pragma: no cover - runs in the child, before exec
    """In the child: remove the permission-bypassing capabilities from the bounding set, so the exec'd
    Python (uid 0, but now bound by the permission bits like anyone) is refused what the bits refuse.
    Switching to uid 65534 instead would not work here: the interpreter lives under /root (mode 0700)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in _FILE_CAPABILITIES:
        if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def unprivileged_runner():
    """A ``preexec_fn`` under which file permissions bind (``None`` when we are not root, where they
    already do), or a string saying why they cannot be made to bind here (the test then skips)."""
    if os.geteuid() != 0:
        return None
    try:
        subprocess.run([sys.executable, "-c", "pass"], preexec_fn=_drop_file_capabilities, check=True)
    except (subprocess.SubprocessError, OSError) as error:
        return f"running as root and cannot drop CAP_DAC_OVERRIDE: {error}"
    return _drop_file_capabilities


def permissions_bind(path: Path, preexec_fn) -> bool:
    """Whether a process started with ``preexec_fn`` is really refused reading ``path``."""
    result = subprocess.run(
        [sys.executable, "-c", "import sys; open(sys.argv[1], 'rb').read()", str(path)],
        preexec_fn=preexec_fn,
        capture_output=True,
    )
    return result.returncode != 0


def can_create(path: Path, preexec_fn) -> bool:
    """Whether a process started with ``preexec_fn`` may create ``path`` (removed again if it could)."""
    result = subprocess.run(
        [sys.executable, "-c", "import sys; open(sys.argv[1], 'x').close()", str(path)],
        preexec_fn=preexec_fn,
        capture_output=True,
    )
    if result.returncode == 0:
        path.unlink()
    return result.returncode == 0


def refusal_lines(result: subprocess.CompletedProcess, name: str) -> list[str]:
    """The stderr lines that talk about ``name``; asserts the rest is at most the one-line summary."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    about = [line for line in lines if name in line]
    others = [line for line in lines if name not in line]
    assert len(others) <= 1 and all(line.startswith(("apply:", "check:", "restore:")) for line in others), lines
    return about


# ---------------------------------------------------------------- source variations


def encoding_of(source: bytes) -> str:
    return tokenize.detect_encoding(io.BytesIO(source).readline)[0]


def _text(source: bytes) -> tuple[str, str]:
    encoding = encoding_of(source)
    return source.decode(encoding), encoding


def to_crlf(source: bytes) -> bytes:
    return source.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def with_bom(source: bytes) -> bytes:
    return source if source.startswith(BOM) else BOM + source


def _lines_inside_strings(text: str) -> set:
    """Line numbers (1-based) that continue a multi-line string token: their text is the string's value."""
    inside = set()
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.STRING and token.end[0] > token.start[0]:
            inside.update(range(token.start[0] + 1, token.end[0] + 1))
    return inside


def _statement_starts(text: str) -> list[int]:
    """Line numbers where a logical line (a statement) starts."""
    starts, fresh = [], True
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            fresh = True
        elif token.type in (tokenize.NL, tokenize.COMMENT, tokenize.ENCODING, tokenize.ENDMARKER):
            continue
        elif fresh:
            starts.append(token.start[0])
            fresh = False
    return starts


def reindent(source: bytes, unit: str) -> bytes:
    """The same module with each 4-space indentation level written as ``unit`` (e.g. two spaces, a tab);
    string contents are left alone, so the program means the same."""
    text, encoding = _text(source)
    keep = _lines_inside_strings(text)
    lines = text.splitlines(keepends=True)
    for number, line in enumerate(lines, start=1):
        if number in keep:
            continue
        body = line.lstrip(" ")
        width = len(line) - len(body)
        lines[number - 1] = unit * (width // 4) + " " * (width % 4) + body
    return "".join(lines).encode(encoding)


def with_extra_comments(source: bytes, every: int = 3) -> bytes:
    """Before every ``every``-th statement, a comment at its indentation and two blank lines."""
    text, encoding = _text(source)
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines(keepends=True)
    for number in reversed(_statement_starts(text)[::every]):
        line = lines[number - 1]
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        lines[number - 1 : number - 1] = [f"{indent}# reviewer's note before line {number}{newline}", newline, newline]
    return "".join(lines).encode(encoding)


def reorder_methods(source: bytes) -> bytes:
    """The handler with its methods in reverse order (each keeps its comments and blank lines)."""
    import libcst as cst

    module = cst.parse_module(source)

    class Reverse(cst.CSTTransformer):
        def leave_ClassDef(self, original_node, updated_node):
            if updated_node.name.value != "ClaudeHookHandler":
                return updated_node
            body = list(updated_node.body.body)
            methods = [s for s in body if isinstance(s, cst.FunctionDef)]
            others = [s for s in body if not isinstance(s, cst.FunctionDef)]
            blank = cst.EmptyLine(indent=False)
            methods = [m.with_changes(leading_lines=[blank, *m.leading_lines]) for m in reversed(methods)]
            return updated_node.with_changes(body=updated_node.body.with_changes(body=others + methods))

    return module.visit(Reverse()).bytes


# ---------------------------------------------------------------- what a good patch looks like


def line_endings(source: bytes) -> set:
    """The distinct line endings of a source: {b"\\n"}, {b"\\r\\n"}, or a mix."""
    endings = set()
    for line in source.splitlines(keepends=True):
        stripped = line.rstrip(b"\r\n")
        if stripped != line:
            endings.add(line[len(stripped) :])
    return endings


def new_undefined_names(before: bytes, after: bytes) -> set:
    """Names pyflakes reports undefined in ``after`` that were not already undefined in ``before``."""

    def names(source: bytes) -> set:
        text, _ = _text(source)
        return undefined_names(text.lstrip("\ufeff").encode("utf-8"))

    return names(after) - names(before)


def rewritten_lines(source: bytes) -> set:
    """Lines the fixes may rewrite rather than insert around: the Socket.IO client getters' bodies,
    ``__del__``, and ``handler = ClaudeHookHandler()`` in main()."""
    tree = ast.parse(source)
    spans = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "ClaudeHookHandler":
            for method in node.body:
                if isinstance(method, ast.FunctionDef) and (method.name == "__del__" or _builds_client(method)):
                    spans.append((method.lineno + (method.name != "__del__"), method.end_lineno))
        if isinstance(node, ast.FunctionDef) and node.name == "main":
            for statement in ast.walk(node):
                if (
                    isinstance(statement, ast.Assign)
                    and isinstance(statement.value, ast.Call)
                    and getattr(statement.value.func, "id", None) == "ClaudeHookHandler"
                ):
                    spans.append((statement.lineno, statement.end_lineno))
    return {number for start, end in spans for number in range(start, end + 1)}


def _builds_client(method: ast.FunctionDef) -> bool:
    return any(
        isinstance(node, ast.Attribute) and node.attr == "Client" and getattr(node.value, "id", None) == "socketio"
        for node in ast.walk(method)
    )


def assert_preserved(original: bytes, patched: bytes) -> None:
    """Every line of the original outside what the fixes rewrite is still there, byte for byte and in
    order: the fixes only insert (formatting, comments, blank lines and line endings are kept)."""
    skip = rewritten_lines(original)
    kept = [line for number, line in enumerate(original.splitlines(keepends=True), 1) if number not in skip]
    remaining = iter(patched.splitlines(keepends=True))
    for line in kept:
        if not any(line == candidate for candidate in remaining):
            raise AssertionError(f"original line lost or altered: {line!r}")


def count_lines(source: bytes, needles: Iterable[str]) -> dict[str, int]:
    """How many lines of ``source`` start with each needle (after their indentation)."""
    text, _ = _text(source)
    lines = [line.strip() for line in text.splitlines()]
    return {needle: sum(line.startswith(needle) for line in lines) for needle in needles}


# Definitions and statements a fix injects: each must appear at most once, however the file got patched.
INJECTED = (
    "class SocketIOConnectionPool",
    "self.connection_pool = SocketIOConnectionPool(",
    "_global_handler = None",
    "_handler_lock = threading.Lock()",
    "global _global_handler",
    "import threading",
    "import time",
    "MAX_DELEGATION_TRACKING =",
    "MAX_PROMPT_TRACKING =",
    "MAX_CACHE_AGE_SECONDS =",
    "CLEANUP_INTERVAL_EVENTS =",
    "def _cleanup_old_entries",
    "self.events_processed = 0",
    "self.events_processed += 1",
    "def __del__",
    "pool.close_all()",
)


def assert_no_duplicates(source: bytes) -> None:
    counts = count_lines(source, INJECTED)
    assert all(count <= 1 for count in counts.values()), {k: v for k, v in counts.items() if v > 1}


def fix_statuses(check: subprocess.CompletedProcess) -> dict[str, str]:
    """Fix name -> status from ``check --format json`` of one file."""
    import json

    (entry,) = json.loads(check.stdout)["files"]
    return {fix["name"]: fix["status"] for fix in entry["fixes"]}
