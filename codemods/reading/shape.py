"""Read a hook handler's structure with the standard library's ``ast``.

Everything the tool decides (is this a claude-mpm handler, which layout, which fix
still has work to do) is decided here, from structure, never from version numbers
or text matching. ``check`` needs nothing else, so it never imports libcst.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import TypeVar

HANDLER_CLASS = "ClaudeHookHandler"
POOL_CLASS = "SocketIOConnectionPool"
CLEANUP_METHOD = "_cleanup_old_entries"
EVENT_COUNTER = "events_processed"
POOL_ATTRIBUTE = "connection_pool"
# The revision of the pool this version injects: a pool of ours with a lower one is replaced
# (0.1.0's, revision 1, lost events and hung hook processes at exit).
POOL_REVISION = 2

# Unbounded collections a handler may set in __init__, with the limit that bounds each.
TRACKED_COLLECTIONS: dict[str, str] = {
    "active_delegations": "MAX_DELEGATION_TRACKING",
    "delegation_requests": "MAX_DELEGATION_TRACKING",
    "pending_prompts": "MAX_PROMPT_TRACKING",
}
GIT_CACHE = ("_git_branch_cache", "_git_branch_cache_time")
CACHE_AGE_LIMIT = "MAX_CACHE_AGE_SECONDS"
CLEANUP_INTERVAL = "CLEANUP_INTERVAL_EVENTS"

MARK_PREFIX = "fix-memory-leaks:"
# What the handler may call on its connection pool: the public methods of the pool this tool injects.
POOL_METHODS = frozenset({"get_connection", "close_all"})
# The handler's limits as claude-mpm 3.9.4-3.9.11 keep them: instance attributes set in __init__.
LIMIT_NAMES = ("MAX_DELEGATION_TRACKING", "MAX_PROMPT_TRACKING", CACHE_AGE_LIMIT, CLEANUP_INTERVAL)
REPLY_METHOD = "_continue_execution"
_MARK = re.compile(r"#\s*fix-memory-leaks:\s*([a-z][a-z-]*)")


class UnsupportedShape(Exception):
    """The file is Python, but not a hook handler layout this tool knows."""


@dataclass(frozen=True)
class UpstreamFix:
    """claude-mpm's own fix as released in 3.9.4-3.9.11, and what of it still breaks the hook in real use.

    Each field names what is left to repair; all are empty or False once ``apply`` has repaired it.
    """

    variant: str  # the releases this shape was seen in: "3.9.4-3.9.8" or "3.9.9-3.9.11"
    pool_is_theirs: bool  # its SocketIOConnectionPool, closed only from __del__ at interpreter finalization
    retrying_methods: tuple[str, ...]  # emit again through an immediate reconnection, in an except block
    exit_replies: tuple[str, ...]  # functions nested in main() that reply and sys.exit(), called or registered
    alarm_replies: tuple[str, ...]  # functions nested in handle() that reply before the except block replies again
    stdin_waits: tuple[str, ...]  # methods that select() on sys.stdin (fails for a stdin with no descriptor)
    literal_limits: tuple[str, ...]  # limits set in __init__ as numbers (not from the config)
    cleanup_is_theirs: bool  # _cleanup_old_entries() trims by sorted key, not by age of insertion
    del_is_theirs: bool  # __del__ closes the pool's clients during finalization

    @property
    def layout(self) -> str:
        detail = "its pool and singleton" if self.variant.startswith("3.9.4") else "+ alarm, exit in main()"
        return f"claude-mpm's own fix {self.variant} ({detail})"


@dataclass(frozen=True)
class Shape:
    """What a handler file holds, as far as the five fixes care."""

    module_names: frozenset[str]
    marks: frozenset[str]
    init_attrs: frozenset[str]
    methods: frozenset[str]
    tracked: tuple[str, ...]
    has_git_cache: bool
    client_builders: tuple[str, ...]
    synced_getters: tuple[str, ...]
    pool_revision: int | None  # of a pool class of ours (our mark right above it), else None
    builders_without_port: tuple[str, ...]
    main_builds_handler: bool
    handle_calls_cleanup: bool
    del_closes_pool: bool
    upstream_fixed: bool
    lines: dict[str, int]
    upstream: UpstreamFix | None = None  # claude-mpm 3.9.4-3.9.11: its own pool in this file (repaired, not left)

    @property
    def has_socketio_client(self) -> bool:
        return bool(self.client_builders) or POOL_ATTRIBUTE in self.init_attrs

    @property
    def needed_limits(self) -> tuple[str, ...]:
        """The limit constants this layout's collections need, plus the interval, in a stable order."""
        names = [TRACKED_COLLECTIONS[attr] for attr in self.tracked]
        if self.has_git_cache:
            names.append(CACHE_AGE_LIMIT)
        if names:
            names.append(CLEANUP_INTERVAL)
        return tuple(dict.fromkeys(names))

    @property
    def layout(self) -> str:
        """A short name for the layout, from its features (the releases named are where it was seen)."""
        if self.upstream is not None:
            return self.upstream.layout
        if self.upstream_fixed:
            return "fixed upstream (4.x+)"
        if not self.has_socketio_client and not self.tracked:
            return "3.0-3.1 (no Socket.IO client, no tracking)"
        if "pending_prompts" in self.tracked:
            return "3.6-3.9.2 (Socket.IO, delegations, prompts)"
        if "delegation_requests" in self.tracked:
            return "3.5 (Socket.IO, delegation requests)"
        return "3.2-3.4 (Socket.IO, delegations)"


def read_marks(text: str) -> frozenset[str]:
    """The fixes whose marker comment (``# fix-memory-leaks: NAME``) is in the text."""
    return frozenset(_MARK.findall(text))


def inspect(source: bytes) -> Shape:
    """Parse ``source`` and describe it; raise ``SyntaxError`` or ``UnsupportedShape``."""
    tree = ast.parse(source)
    text = source.decode("utf-8", errors="replace")
    handler = _top_level(tree, ast.ClassDef, HANDLER_CLASS)
    if handler is None:
        raise UnsupportedShape(f"no class {HANDLER_CLASS}: not a claude-mpm hook handler")
    methods = {node.name: node for node in handler.body if isinstance(node, ast.FunctionDef)}
    for required in ("__init__", "handle"):
        if required not in methods:
            raise UnsupportedShape(f"{HANDLER_CLASS} has no {required}() method")
    main = _top_level(tree, ast.FunctionDef, "main")
    if main is None:
        raise UnsupportedShape("no top-level main() function")

    module_names, _ = _module_bindings(tree)
    marks = read_marks(text)
    init = methods["__init__"]
    assignments = list(_self_assignments(init))
    init_attrs = frozenset(attr for attr, _ in assignments)
    dict_attrs = {attr for attr, value in assignments if _is_dict_value(value)}
    builders = tuple(name for name, node in methods.items() if _builds_socketio_client(node))
    pool_revision = _our_pool_revision(tree, text)
    # Only an outdated pool of ours comes with getters to rewrite again: walk the methods only then.
    stale = pool_is_outdated(pool_revision)
    synced_getters = tuple(name for name, node in methods.items() if stale and _stores_pooled_client(node))
    upstream_fixed = _upstream_singleton(tree, text)
    upstream = _upstream_fix(tree, text, methods, main, assignments) if upstream_fixed else None
    shape = Shape(
        module_names=frozenset(module_names),
        marks=marks,
        init_attrs=init_attrs,
        methods=frozenset(methods),
        tracked=tuple(attr for attr in TRACKED_COLLECTIONS if attr in dict_attrs),
        has_git_cache=all(attr in dict_attrs for attr in GIT_CACHE),
        client_builders=builders,
        synced_getters=synced_getters,
        pool_revision=pool_revision,
        builders_without_port=tuple(name for name in builders if not _assigns_name(methods[name], "port")),
        main_builds_handler=bool(handler_constructions(main)),
        handle_calls_cleanup=_calls_method(methods["handle"], CLEANUP_METHOD),
        del_closes_pool="__del__" in methods and _calls_method(methods["__del__"], "close_all"),
        upstream_fixed=upstream_fixed,
        upstream=upstream,
        lines={
            "class": handler.lineno,
            "main": main.lineno,
            **{name: node.lineno for name, node in methods.items()},
            **({"builder": methods[builders[0]].lineno} if builders else {}),
        },
    )
    if not upstream_fixed:
        _require_known_prefix_shape(shape)
    return shape


def _require_known_prefix_shape(shape: Shape) -> None:
    if not shape.main_builds_handler and "singleton" not in shape.marks:
        raise UnsupportedShape(f"main() does not create {HANDLER_CLASS}() (expected `handler = {HANDLER_CLASS}()`)")
    if shape.builders_without_port:
        name = shape.builders_without_port[0]
        raise UnsupportedShape(f"{HANDLER_CLASS}.{name}() builds a socketio.Client but sets no `port`")
    if shape.client_builders and "socketio" not in shape.module_names:
        raise UnsupportedShape("the handler builds socketio.Client but the module never imports socketio")


def _marked_above(lines: list[str], node: ast.stmt, fix: str) -> bool:
    """Whether the line right above ``node`` is the mark of ``fix`` (how our injected definitions start)."""
    return node.lineno >= 2 and fix in read_marks(lines[node.lineno - 2])


def _upstream_singleton(tree: ast.Module, text: str) -> bool:
    """``_global_handler`` assigned at module level without our singleton mark right above: claude-mpm's own."""
    lines = text.splitlines()
    return any(
        isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "_global_handler" for t in node.targets)
        and not _marked_above(lines, node, "singleton")
        for node in tree.body
    )


def _upstream_fix(tree: ast.Module, text: str, methods, main: ast.FunctionDef, assignments) -> UpstreamFix | None:
    """What is left of claude-mpm's own 3.9.4-3.9.11 fix in the file; None for 4.x and later (no pool here)."""
    pool = _top_level(tree, ast.ClassDef, POOL_CLASS)
    if pool is None or POOL_ATTRIBUTE not in {attr for attr, _ in assignments}:
        return None
    pool_calls, retrying, stdin_waits = _upstream_method_facts(methods)
    unknown = sorted(pool_calls - POOL_METHODS)
    if unknown:
        raise UnsupportedShape(
            f"the handler calls connection_pool.{unknown[0]}(), which this tool's pool does not have"
        )
    lines = text.splitlines()
    handle = methods["handle"]
    alarm = any(_is_call(node, "signal", "alarm") for node in ast.walk(handle))
    alarm_replies = tuple(fn.name for fn in _nested_functions(handle) if _calls_method(fn, REPLY_METHOD))
    if alarm_replies and not _bare_except_replies(handle):
        raise UnsupportedShape(f"{HANDLER_CLASS}.handle() has a timeout handler but no `except:` that replies")
    exiting = {fn.name for fn in _nested_functions(main) if any(_is_call(n, "sys", "exit") for n in ast.walk(fn))}
    cleanup = methods.get(CLEANUP_METHOD)
    return UpstreamFix(
        variant="3.9.9-3.9.11" if alarm else "3.9.4-3.9.8",
        pool_is_theirs=not _marked_above(lines, pool, "connection-pool"),
        retrying_methods=retrying,
        exit_replies=tuple(sorted(name for name in exiting if _calls_or_registers(main, name))),
        alarm_replies=alarm_replies,
        stdin_waits=stdin_waits,
        literal_limits=tuple(
            attr
            for attr, value in assignments
            if attr in LIMIT_NAMES and isinstance(value, ast.Constant) and isinstance(value.value, int)
        ),
        cleanup_is_theirs=cleanup is not None and not _marked_above(lines, cleanup, "periodic-cleanup"),
        del_is_theirs="__del__" in methods and not _marked_above(lines, methods["__del__"], "teardown"),
    )


def _upstream_method_facts(methods: dict[str, ast.FunctionDef]) -> tuple[set[str], tuple[str, ...], tuple[str, ...]]:
    """One walk over the handler's methods: the attributes used on ``self.connection_pool``, the methods whose
    except block asks the pool for a client again (an emit retried through an immediate reconnection), and
    the methods that wait for stdin with ``select()`` on ``sys.stdin``."""
    pool_calls: set[str] = set()
    retrying: dict[str, None] = {}
    stdin_waits: dict[str, None] = {}
    for name, function in methods.items():
        for node in ast.walk(function):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == POOL_ATTRIBUTE
                and isinstance(node.value.value, ast.Name)
                and node.value.value.id == "self"
            ):
                pool_calls.add(node.attr)
            elif isinstance(node, ast.ExceptHandler) and any(_calls_method(s, "get_connection") for s in node.body):
                retrying[name] = None
            elif _is_stdin_select(node):
                stdin_waits[name] = None
    return pool_calls, tuple(retrying), tuple(stdin_waits)


def _nested_functions(function: ast.FunctionDef) -> list[ast.FunctionDef]:
    return [node for node in ast.walk(function) if isinstance(node, ast.FunctionDef) and node is not function]


def _is_call(node: ast.AST, module: str, name: str) -> bool:
    """``module.name(...)``"""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == name
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == module
    )


def _calls_or_registers(main: ast.FunctionDef, name: str) -> bool:
    """``name()`` as a statement of main(), or ``atexit.register(name)``: a reply at the end of each call."""
    for node in ast.walk(main):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            call = node.value
            if isinstance(call.func, ast.Name) and call.func.id == name:
                return True
            if _is_call(call, "atexit", "register") and any(
                isinstance(a, ast.Name) and a.id == name for a in call.args
            ):
                return True
    return False


def _bare_except_replies(handle: ast.FunctionDef) -> bool:
    """handle() has an ``except:`` that replies: where a SystemExit raised by its timeout handler ends up."""
    return any(
        isinstance(node, ast.ExceptHandler)
        and node.type is None
        and any(_calls_method(s, REPLY_METHOD) for s in node.body)
        for node in ast.walk(handle)
    )


def _is_stdin_select(node: ast.AST) -> bool:
    """``ready, ... = select.select([sys.stdin], ...)``"""
    return (
        isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and _is_call(node.value, "select", "select")
        and bool(node.value.args)
        and isinstance(node.value.args[0], ast.List)
        and any(_is_sys_stdin(elt) for elt in node.value.args[0].elts)
    )


def _is_sys_stdin(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "stdin"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    )


def handler_constructions(main: ast.FunctionDef) -> tuple[ast.Assign, ...]:
    """``name = ClaudeHookHandler()`` statements in main() that are not the singleton's own."""
    found = []
    for node in ast.walk(main):
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id != "_global_handler"
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == HANDLER_CLASS
        ):
            found.append(node)
    return tuple(found)


def pool_is_outdated(revision: int | None) -> bool:
    """A pool of ours older than the one this version injects (``apply`` replaces it)."""
    return revision is not None and revision < POOL_REVISION


def _our_pool_revision(tree: ast.Module, text: str) -> int | None:
    """``REVISION`` of the pool class we injected (1 for 0.1.0's, which had none); None if the
    module has no pool class, or one that is not ours."""
    pool = _top_level(tree, ast.ClassDef, POOL_CLASS)
    if pool is None or pool.lineno < 2:
        return None
    if read_marks(text.splitlines()[pool.lineno - 2]) != {"connection-pool"}:
        return None
    for node in pool.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "REVISION" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, int)
        ):
            return node.value.value
    return 1


def _stores_pooled_client(function: ast.FunctionDef) -> bool:
    """``self.sio_client = self.connection_pool.get_connection(...)``: 0.1.0's getter, which let
    the handler's own ``__del__`` disconnect (and block on) the pooled client."""
    return any(
        isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Attribute) and t.attr == "sio_client" for t in node.targets)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Attribute)
        and node.value.func.attr == "get_connection"
        for node in ast.walk(function)
    )


_Definition = TypeVar("_Definition", ast.ClassDef, ast.FunctionDef)


def _top_level(tree: ast.Module, kind: type[_Definition], name: str) -> _Definition | None:
    for node in tree.body:
        if isinstance(node, kind) and node.name == name:
            return node
    return None


def _module_bindings(tree: ast.Module) -> tuple[set, set]:
    """Names bound at module level (including inside top-level try/if blocks), and imported modules."""
    names, imported = set(), set()
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                names.add(alias.asname or alias.name.split(".")[0])
                if alias.asname is None:
                    imported.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, (ast.Try, ast.If)):
            pending.extend(node.body + node.orelse + getattr(node, "finalbody", []))
            for handler in getattr(node, "handlers", []):
                pending.extend(handler.body)
    return names, imported


def _self_assignments(function: ast.FunctionDef):
    """``(attribute, value)`` for every ``self.attribute = value`` in the function."""
    for node in ast.walk(function):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                ):
                    yield target.attr, node.value


def _is_dict_value(value: ast.expr | None) -> bool:
    return isinstance(value, ast.Dict) or (
        isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "dict"
    )


def _builds_socketio_client(function: ast.FunctionDef) -> bool:
    return any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "Client"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "socketio"
        for node in ast.walk(function)
    )


def _assigns_name(function: ast.FunctionDef, name: str) -> bool:
    return any(
        isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
        for node in ast.walk(function)
    )


def _calls_method(function: ast.AST, method: str) -> bool:
    return any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == method
        for node in ast.walk(function)
    )
