"""Read a hook handler's structure with the standard library's ``ast``.

Everything the tool decides (is this a claude-mpm handler, which layout, which fix
still has work to do) is decided here, from structure, never from version numbers
or text matching. ``check`` needs nothing else, so it never imports libcst.
"""

from __future__ import annotations

import ast
import dataclasses
from typing import TypeVar

from .features import (
    CACHE_AGE_LIMIT,
    CLEANUP_INTERVAL,
    CLEANUP_METHOD,
    EVENT_COUNTER,
    GIT_CACHE,
    GLOBAL_HANDLER,
    HANDLER_CLASS,
    LIMIT_NAMES,
    MARK_PREFIX,
    POOL_ATTRIBUTE,
    POOL_CLASS,
    POOL_METHODS,
    POOL_REVISION,
    REPLY_METHOD,
    TRACKED_COLLECTIONS,
    Shape,
    UnsupportedShape,
    UpstreamFix,
    UpstreamVariant,
    method_key,
    read_marks,
)
from .layouts import layout_of

__all__ = [  # what callers read from here: the record, and the names the reading is made of
    "CACHE_AGE_LIMIT",
    "CLEANUP_INTERVAL",
    "CLEANUP_METHOD",
    "EVENT_COUNTER",
    "GIT_CACHE",
    "HANDLER_CLASS",
    "MARK_PREFIX",
    "POOL_ATTRIBUTE",
    "POOL_CLASS",
    "POOL_REVISION",
    "REPLY_METHOD",
    "TRACKED_COLLECTIONS",
    "Shape",
    "UnsupportedShape",
    "UpstreamFix",
    "handler_constructions",
    "inspect",
    "pool_is_outdated",
    "read_marks",
]


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
    marks_above = _marks_above(text.splitlines(), tree, handler)
    init = methods["__init__"]
    assignments = list(_self_assignments(init))
    init_attrs = frozenset(attr for attr, _ in assignments)
    dict_attrs = {attr for attr, value in assignments if _is_dict_value(value)}
    builders = tuple(name for name, node in methods.items() if _builds_socketio_client(node))
    pool_revision = _our_pool_revision(tree, marks_above)
    # Only an outdated pool of ours comes with getters to rewrite again: walk the methods only then.
    stale = pool_is_outdated(pool_revision)
    synced_getters = tuple(name for name, node in methods.items() if stale and _stores_pooled_client(node))
    # claude-mpm's own singleton: _global_handler at module level, without a mark of ours right above it.
    upstream_rework = GLOBAL_HANDLER in marks_above and not marks_above[GLOBAL_HANDLER]
    upstream = _upstream_fix(tree, methods, main, assignments) if upstream_rework else None
    shape = Shape(
        module_names=frozenset(module_names),
        marks=marks,
        marks_above=marks_above,
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
        carries_upstream_rework=upstream_rework,
        upstream=upstream,
        lines={
            "class": handler.lineno,
            "main": main.lineno,
            **{name: node.lineno for name, node in methods.items()},
            **({"builder": methods[builders[0]].lineno} if builders else {}),
        },
    )
    if not upstream_rework:
        _require_known_prefix_shape(shape)
    return dataclasses.replace(shape, layout=layout_of(shape).name)


def _require_known_prefix_shape(shape: Shape) -> None:
    if not shape.main_builds_handler and not shape.marks_on(GLOBAL_HANDLER):  # not our singleton's either
        raise UnsupportedShape(f"main() does not create {HANDLER_CLASS}() (expected `handler = {HANDLER_CLASS}()`)")
    if shape.builders_without_port:
        name = shape.builders_without_port[0]
        raise UnsupportedShape(f"{HANDLER_CLASS}.{name}() builds a socketio.Client but sets no `port`")
    if shape.client_builders and "socketio" not in shape.module_names:
        raise UnsupportedShape("the handler builds socketio.Client but the module never imports socketio")


def _marks_above(lines: list[str], tree: ast.Module, handler: ast.ClassDef) -> dict[str, frozenset[str]]:
    """The marks on the line right above each top-level definition and assignment (by name), and above each
    handler method (``method_key``): how our injected definitions start."""
    found: dict[str, frozenset[str]] = {}

    def above(node: ast.stmt) -> frozenset[str]:
        return read_marks(lines[node.lineno - 2]) if node.lineno >= 2 else frozenset()

    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.setdefault(node.name, above(node))
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found.setdefault(target.id, above(node))
    for node in handler.body:
        if isinstance(node, ast.FunctionDef):
            found.setdefault(method_key(node.name), above(node))
    return found


def _upstream_fix(tree: ast.Module, methods, main: ast.FunctionDef, assignments) -> UpstreamFix | None:
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
    handle = methods["handle"]
    alarm = any(_is_call(node, "signal", "alarm") for node in ast.walk(handle))
    alarm_replies = tuple(fn.name for fn in _nested_functions(handle) if _calls_method(fn, REPLY_METHOD))
    if alarm_replies and not _bare_except_replies(handle):
        raise UnsupportedShape(f"{HANDLER_CLASS}.handle() has a timeout handler but no `except:` that replies")
    exiting = {fn.name for fn in _nested_functions(main) if any(_is_call(n, "sys", "exit") for n in ast.walk(fn))}
    return UpstreamFix(
        variant=UpstreamVariant.WITH_ALARM_AND_EXIT if alarm else UpstreamVariant.POOL_AND_SINGLETON,
        retrying_methods=retrying,
        exit_replies=tuple(sorted(name for name in exiting if _calls_or_registers(main, name))),
        alarm_replies=alarm_replies,
        stdin_waits=stdin_waits,
        literal_limits=tuple(
            attr
            for attr, value in assignments
            if attr in LIMIT_NAMES and isinstance(value, ast.Constant) and isinstance(value.value, int)
        ),
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
            and node.targets[0].id != GLOBAL_HANDLER
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == HANDLER_CLASS
        ):
            found.append(node)
    return tuple(found)


def pool_is_outdated(revision: int | None) -> bool:
    """A pool of ours older than the one this version injects (``apply`` replaces it)."""
    return revision is not None and revision < POOL_REVISION


def _our_pool_revision(tree: ast.Module, marks_above: dict[str, frozenset[str]]) -> int | None:
    """``REVISION`` of the pool class we injected (1 for 0.1.0's, which had none); None if the
    module has no pool class, or one that is not ours."""
    pool = _top_level(tree, ast.ClassDef, POOL_CLASS)
    if pool is None or len(marks_above[POOL_CLASS]) != 1:  # our pool class carries its one mark right above it
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
