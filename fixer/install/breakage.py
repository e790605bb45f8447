"""claude-mpm releases whose own hook is known to break in real use, told apart by what their files hold.

``check`` and ``apply`` leave claude-mpm's refactored handlers (4.x and later) byte-identical: they are
upstream's code. But some of them break where Claude Code runs them, and those must not be called ok.
Each rule below reads the structure that breaks (with the standard library's ``ast``: ``check`` never
imports libcst), in the handler and in what is installed beside it (the wrapper that runs it, the modules it
imports), never a version number. Measured on real installs (one hook process per event, as each release's
wrapper runs it): 4.0.3-4.0.10 fail at import, 4.0.11-4.0.34 never connect without websocket-client,
4.1.0-4.1.2 send nothing out of the process, 4.1.3-4.1.8 abort most events with an AttributeError; 4.1.10 is
the first release on the package index whose hook delivers every event (4.1.9 was never published there).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from codemods.reading.shape import HANDLER_CLASS

from .model import HANDLER_MODULE, WRAPPER

# The nearest release on the package index whose hook works in real use (measured, see the module docstring):
# what the note recommends. The files in front of us cannot tell which later release works, only what breaks.
WORKS_FROM = "4.1.10"
# Method names that send (or may send) an event somewhere: a handler's ways out, and what a queue must not call.
SENDS = frozenset({"emit", "emit_event", "publish", "post", "send", "connect", "call"})


@dataclass(frozen=True)
class Breakage:
    """Why a release's hook breaks in real use, where the code shows it, and the release to upgrade to."""

    problem: str
    where: str  # file:line (relative to the handler's folder) of the code that breaks
    line: int  # the handler line to point an annotation at
    works_from: str = WORKS_FROM

    @property
    def note(self) -> str:
        return f"{self.problem} ({self.where}): upgrade to claude-mpm {self.works_from} or later"


def known_breakage(handler: Path, source: bytes) -> Breakage | None:
    """The first known breakage of the handler at ``handler`` (its bytes: ``source``), or None.

    Meant for handlers that carry claude-mpm's own fix (``Shape.upstream_fixed``); files that cannot be
    read or parsed beside it count as absent."""
    tree = ast.parse(source)
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == HANDLER_CLASS), None)
    if cls is None:
        return None
    folder = handler.parent
    for rule in (_relative_imports_run_by_path, _nothing_leaves_the_process, _websocket_only_client):
        found = rule(folder, handler.name, tree, cls)
        if found is not None:
            return found
    return _attributes_the_handler_lacks(folder, handler.name, tree, cls)


# ---------------------------------------------------------------- 4.0.3-4.0.10: relative imports, run by path


def _relative_imports_run_by_path(folder: Path, name: str, tree: ast.Module, cls: ast.ClassDef) -> Breakage | None:
    """A top-level ``from .x import y`` with no fallback fails with ImportError when the file is run by path."""
    unguarded = next((n for n in tree.body if isinstance(n, ast.ImportFrom) and n.level), None)
    if unguarded is None or wrapper_runs(folder) != "path":
        return None
    return Breakage(
        f"{WRAPPER} runs {name} by path, but the handler imports `from {'.' * unguarded.level}{unguarded.module} "
        "import ...` with no fallback: every hook event fails with ImportError (attempted relative import with no "
        "known parent package), and nothing reaches the dashboard",
        f"{name}:{unguarded.lineno}",
        unguarded.lineno,
    )


def wrapper_runs(folder: Path) -> str | None:
    """How the ``hook_wrapper.sh`` installed beside the handler runs it: "path", "module", or None (no wrapper,
    or neither): read from its commands, not its comments or log lines."""
    try:
        text = (folder / WRAPPER).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        command = line.strip()
        if command.startswith(("#", "echo ")):
            continue
        if re.search(r"-m\s+" + re.escape(HANDLER_MODULE) + r"\b", command):
            return "module"
        if re.search(r"[\"'/$]hook_handler\.py\b", command):
            return "path"
    return None


# ---------------------------------------------------------------- 4.0.11-4.0.34: websocket first, never polling


def _websocket_only_client(folder: Path, name: str, tree: ast.Module, cls: ast.ClassDef) -> Breakage | None:
    """``connect(..., transports=['websocket', ...])``: python-engineio connects over the first transport only,
    so without websocket-client the client never connects (it does not fall back to polling)."""
    installed = websocket_client_beside(folder)
    if installed is None:
        consequence = (
            "without websocket-client (not a claude-mpm dependency) the hook never connects, and with it most "
            "events are still lost"
        )
    elif installed:
        consequence = (
            "websocket-client is installed beside it, yet most events are lost (measured on a real install, one "
            "hook process per event)"
        )
    else:
        consequence = (
            "websocket-client (not a claude-mpm dependency) is not installed beside it: the hook never connects, "
            "and nothing reaches the dashboard"
        )
    for module_name, module in _handler_and_sibling_modules(folder, name, tree, b"transports"):
        for node in ast.walk(module):
            if isinstance(node, ast.Call) and _first_transport(node) == "websocket":
                return Breakage(
                    "its Socket.IO client connects with transports=['websocket', ...], and python-engineio then "
                    f"tries websocket only, never polling; {consequence}",
                    f"{module_name}:{node.lineno}",
                    node.lineno if module_name == name else cls.lineno,
                )
    return None


def _first_transport(call: ast.Call) -> str | None:
    for keyword in call.keywords:
        if keyword.arg == "transports" and isinstance(keyword.value, (ast.List, ast.Tuple)) and keyword.value.elts:
            first = keyword.value.elts[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                return first.value
    return None


def websocket_client_beside(folder: Path) -> bool | None:
    """Is websocket-client installed in the folder that holds this ``claude_mpm`` package (site-packages)?
    None when the handler is not inside a ``claude_mpm/hooks/claude_hooks`` folder: then nothing tells."""
    package = folder.parent.parent  # claude_mpm/hooks/claude_hooks -> claude_mpm
    if (package.name, folder.parent.name, folder.name) != ("claude_mpm", "hooks", "claude_hooks"):
        return None
    return (package.parent / "websocket" / "__init__.py").is_file()


def _handler_and_sibling_modules(
    folder: Path, name: str, tree: ast.Module, holding: bytes
) -> Iterator[tuple[str, ast.Module]]:
    """The handler, then each module beside it that it imports relatively (``from .x import``), parsed; a module
    whose text does not hold ``holding`` is skipped unparsed (parsing all of them would triple check's time)."""
    yield name, tree
    seen = set()
    for node in tree.body:
        for statement in [node, *_nested_statements(node)]:
            if isinstance(statement, ast.ImportFrom) and statement.level == 1 and statement.module:
                relative = statement.module.replace(".", "/")
                package = folder / relative
                paths = sorted(package.glob("*.py")) if package.is_dir() else [folder / f"{relative}.py"]
                for path in paths:
                    parsed = None if path in seen else _parse(path, holding)
                    seen.add(path)
                    if parsed is not None:
                        yield path.relative_to(folder).as_posix(), parsed


def _nested_statements(node: ast.stmt) -> list[ast.stmt]:
    if isinstance(node, ast.Try):
        return [*node.body, *(s for handler in node.handlers for s in handler.body)]
    return []


def _parse(path: Path, holding: bytes = b"") -> ast.Module | None:
    try:
        source = path.read_bytes()
        return ast.parse(source) if holding in source else None
    except (OSError, SyntaxError, ValueError):
        return None


# ---------------------------------------------------------------- 4.1.0-4.1.2: nothing leaves the process


def _nothing_leaves_the_process(folder: Path, name: str, tree: ast.Module, cls: ast.ClassDef) -> Breakage | None:
    """The handler's emitting method publishes to ``self.event_bus`` (an in-process event emitter), and any other
    way out only queues the event for a daemon thread that dies with the hook process."""
    methods = {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}
    for method in methods.values():
        calls = list(_self_attribute_calls(method))
        if ("event_bus", "publish") not in {(attr, called) for attr, called, _ in calls}:
            continue
        others = [(attr, called, line) for attr, called, line in calls if attr != "event_bus" and called in SENDS]
        queued = [(attr, called) for attr, called, _ in others if _only_queues(folder, tree, attr, called)]
        if len(queued) != len(others):
            return None  # some other way out that is not known to fail
        how = "publishes each event to its in-process EventBus only"
        if queued:
            attr, called = queued[0]
            how += (
                f", and self.{attr}.{called}() only queues it for a daemon thread that the hook process exits "
                "before it sends anything"
            )
        return Breakage(
            f"{how}: nothing leaves the hook process, so nothing reaches the dashboard",
            f"{name}:{method.lineno}",
            method.lineno,
        )
    return None


def _self_attribute_calls(function: ast.FunctionDef) -> Iterator[tuple[str, str, int]]:
    """``(attr, method, line)`` for every ``self.attr.method(...)`` in the function."""
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Attribute)
            and isinstance(node.func.value.value, ast.Name)
            and node.func.value.value.id == "self"
        ):
            yield node.func.value.attr, node.func.attr, node.lineno


def _only_queues(folder: Path, tree: ast.Module, attr: str, called: str) -> bool:
    """Does ``self.attr.called(...)`` reach no send at all, only a queue that a daemon thread drains?

    ``self.attr`` must come from ``get_*()`` imported absolutely from a claude_mpm module installed with the
    handler; that module's class is followed through its own methods from ``called``."""
    module = _claude_mpm_module_of(folder, tree, attr)
    if module is None:
        return False
    classes = [n for n in module.body if isinstance(n, ast.ClassDef)]
    for cls in classes:
        methods = {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}
        if called not in methods:
            continue
        reached, pending = set(), [called]
        while pending:
            current = pending.pop()
            if current in reached or current not in methods:
                continue
            reached.add(current)
            for node in ast.walk(methods[current]):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    target = node.func.value
                    if isinstance(target, ast.Name) and target.id == "self":
                        pending.append(node.func.attr)
                    elif node.func.attr in SENDS:
                        return False  # it sends (or may) right away
        drained_by = {_daemon_thread_target(node) for method in methods.values() for node in ast.walk(method)}
        return any(target in methods for target in drained_by if target) and any(
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "append"
            for current in reached
            for node in ast.walk(methods[current])
        )
    return False


def _claude_mpm_module_of(folder: Path, tree: ast.Module, attr: str) -> ast.Module | None:
    """The parsed claude_mpm module whose factory sets ``self.attr`` in the handler, if installed beside it."""
    factories = {
        alias.asname or alias.name: node.module or ""
        for statement in tree.body
        for node in [statement, *_nested_statements(statement)]
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("claude_mpm.")
        for alias in node.names
    }
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Attribute) and t.attr == attr for t in node.targets)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id in factories
        ):
            package_root = folder.parent.parent.parent  # the folder holding claude_mpm
            return _parse(package_root / (factories[node.value.func.id].replace(".", "/") + ".py"))
    return None


def _daemon_thread_target(node: ast.AST) -> str | None:
    """``threading.Thread(target=self.NAME, daemon=True)`` -> NAME."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "Thread"):
        return None
    keywords = {k.arg: k.value for k in node.keywords}
    daemon, target = keywords.get("daemon"), keywords.get("target")
    if isinstance(daemon, ast.Constant) and daemon.value is True and isinstance(target, ast.Attribute):
        return target.attr
    return None


# ---------------------------------------------------------------- 4.1.3-4.1.8: attributes the refactor dropped


def _attributes_the_handler_lacks(folder: Path, name: str, tree: ast.Module, cls: ast.ClassDef) -> Breakage | None:
    """A module beside the handler reads ``self.hook_handler.X`` that ClaudeHookHandler never defines: an
    AttributeError aborts every event that reaches that code."""
    if any(isinstance(n, ast.FunctionDef) and n.name in ("__getattr__", "__getattribute__") for n in cls.body):
        return None
    defined = _class_attributes(cls)
    for where, module in _handler_and_sibling_modules(folder, name, tree, b"hook_handler."):
        if where == name:
            continue
        guarded = _hasattr_guarded(module)
        for node in ast.walk(module):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "hook_handler"
                and isinstance(node.value.value, ast.Name)
                and node.value.value.id == "self"
                and node.attr not in defined
                and node.attr not in guarded
            ):
                return Breakage(
                    f"{where} reads self.hook_handler.{node.attr}, which {HANDLER_CLASS} never sets: an "
                    "AttributeError aborts every hook event that reaches it, and its event is never sent",
                    f"{where}:{node.lineno}",
                    _init_line(cls),
                )
    return None


def _class_attributes(cls: ast.ClassDef) -> set[str]:
    """Methods, class-level names and every ``self.X = ...`` (or ``self.X, ... = ...``) in any method."""
    names: set[str] = set()
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    for inner in ast.walk(cls):
        if isinstance(inner, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = inner.targets if isinstance(inner, ast.Assign) else [inner.target]
            for target in targets:
                for element in target.elts if isinstance(target, ast.Tuple) else [target]:
                    if (
                        isinstance(element, ast.Attribute)
                        and isinstance(element.value, ast.Name)
                        and element.value.id == "self"
                    ):
                        names.add(element.attr)
    return names


def _hasattr_guarded(module: ast.Module) -> set[str]:
    """Attributes the module checks with ``hasattr(self.hook_handler, "X")`` or ``getattr(..., "X", default)``."""
    guarded = set()
    for node in ast.walk(module):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("hasattr", "getattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            guarded.add(node.args[1].value)
    return guarded


def _init_line(cls: ast.ClassDef) -> int:
    return next((n.lineno for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), cls.lineno)
