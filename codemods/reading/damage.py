"""Tell a handler damaged by claude-mpm's own ``scripts/fix_memory_leaks.py`` apart from upstream's fix.

That script pastes a pool class, the singleton globals, limit attributes and a cleanup method into
the handler without looking at what the module defines. Its output carries ``_global_handler`` like
claude-mpm 3.9.4+ (upstream's shipped fix: repaired in 3.9.4-3.9.11, left alone from 4.x on), but does
not hang together: names the module never defines, a cleanup nobody calls that reads attributes nobody
sets; on 3.5+ it does not even parse. Upstream's fix has none of that, so the two are told apart by
structure, never by version. Whether a backup is the original such a file was made from is decided by
``script_edits``, from what the script really edits. Standard library ``ast`` only: ``check`` runs this.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterator, Sequence

from .script_edits import SINGLETON_GLOBALS, made_by_the_script
from .shape import (
    CLEANUP_METHOD,
    HANDLER_CLASS,
    POOL_ATTRIBUTE,
    POOL_CLASS,
    Shape,
    UnsupportedShape,
    _module_bindings,
    _self_assignments,
    _top_level,
    inspect,
    read_marks,
)

SCRIPT = "claude-mpm's fix_memory_leaks.py"
# What the script takes out of __init__ (replacing it with its pool) while the methods still read it.
REMOVED_FROM_INIT = "sio_client"
_BUILTINS = frozenset(dir(builtins)) | {"__file__"}
# Module-level lines the script writes (with the handler class it writes them next to).
_SCRIPT_LINES = tuple(
    re.compile(rf"^{line}".encode(), re.MULTILINE)
    for line in (rf"class {POOL_CLASS}\b", rf"class {HANDLER_CLASS}\b", *(rf"{name}\s*=" for name in SINGLETON_GLOBALS))
)
_LISTED = 4  # names shown per symptom; the rest is counted


class ScriptDamage(Exception):
    """The handler was edited by claude-mpm's fix_memory_leaks.py: broken, and not upstream's fix."""

    def __init__(self, symptoms: Sequence[str]) -> None:
        super().__init__("; ".join(symptoms))
        self.symptoms = tuple(symptoms)


def inspect_refusing_damage(source: bytes) -> Shape:
    """``shape.inspect``, but the script's damage raises ScriptDamage instead of passing for upstream's fix."""
    try:
        shape = inspect(source)
    except SyntaxError as error:
        if _defines_script_additions(source):
            raise ScriptDamage([f"does not parse: line {error.lineno}: {error.msg}"]) from None
        raise
    if shape.carries_upstream_rework:
        symptoms = damage_symptoms(ast.parse(source))
        if symptoms:
            raise ScriptDamage(symptoms)
    return shape


def damage_symptoms(tree: ast.Module) -> list[str]:
    """What is broken in a module that carries the singleton globals: empty for upstream's consistent fix."""
    handler = _top_level(tree, ast.ClassDef, HANDLER_CLASS)
    if handler is None:  # shape.inspect refuses such a module before asking
        return [f"no class {HANDLER_CLASS}"]
    methods = {node.name: node for node in handler.body if isinstance(node, ast.FunctionDef)}
    module_names, _ = _module_bindings(tree)
    symptoms = []
    undefined = sorted(set().union(*(_unbound_names(node, module_names) for node in _script_code(tree, methods))))
    if undefined:
        symptoms.append(f"undefined names {_listed(undefined)}")
    cleanup = methods.get(CLEANUP_METHOD)
    if cleanup is not None:
        unset = sorted(_attributes_read(cleanup) - _class_attributes(handler))
        if unset:
            symptoms.append(f"{CLEANUP_METHOD}() reads attributes never set ({_listed(unset)})")
        if not any(_calls(node, CLEANUP_METHOD) for node in ast.walk(tree)):
            symptoms.append(f"{CLEANUP_METHOD}() is never called")
    init_sets = {attr for attr, _ in _self_assignments(methods["__init__"])}
    took_out = POOL_ATTRIBUTE in init_sets and REMOVED_FROM_INIT not in init_sets
    if took_out and REMOVED_FROM_INIT in _attributes_read(handler):
        symptoms.append(f"self.{REMOVED_FROM_INIT} is read but no longer set in __init__")
    return symptoms


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def original_of(damaged: bytes, candidate: bytes) -> Shape | None:
    """The shape of ``candidate`` if it is the pristine handler the script turned into ``damaged``, else None.

    It must be a known pre-fix layout with nothing of any fix in it, and ``damaged`` must be exactly what
    the script makes of it: its text byte for byte, except at the anchors where the script edits
    (``script_edits``). The original of another release, or a file edited since, is not."""
    try:
        shape = inspect(candidate)
    except (SyntaxError, ValueError, UnsupportedShape):
        return None
    if shape.carries_upstream_rework or shape.marks or POOL_CLASS in shape.module_names:
        return None
    return shape if made_by_the_script(damaged, candidate) else None


def _defines_script_additions(source: bytes) -> bool:
    """Whether a file that does not parse (so has no tree, wherever it broke) defines at module level, as
    lines at column 0, the script's pool class and globals next to the handler class, with none of our marks."""
    if read_marks(source.decode("utf-8", errors="replace")):
        return False
    return all(line.search(source) for line in _SCRIPT_LINES)


def _script_code(tree: ast.Module, methods) -> Iterator[ast.AST]:
    """The statements the script writes: its pool class, the singleton globals, ``__init__`` and the cleanup."""
    for node in tree.body:
        if (isinstance(node, ast.ClassDef) and node.name == POOL_CLASS) or (
            isinstance(node, ast.Assign) and any(getattr(t, "id", None) in SINGLETON_GLOBALS for t in node.targets)
        ):
            yield node
    yield from (methods[name] for name in ("__init__", CLEANUP_METHOD) if name in methods)


def _unbound_names(node: ast.AST, module_names) -> frozenset[str]:
    """Names ``node`` reads that neither it, the module nor the builtins bind."""
    read: set[str] = set()
    bound: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            (read if isinstance(child.ctx, ast.Load) else bound).add(child.id)
        elif isinstance(child, ast.arg):
            bound.add(child.arg)
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(child.name)
        elif isinstance(child, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in child.names)
        elif isinstance(child, ast.ExceptHandler) and child.name:
            bound.add(child.name)
    return frozenset(read - bound - set(module_names) - _BUILTINS)


def _attributes_read(node: ast.AST) -> frozenset[str]:
    return frozenset(
        child.attr
        for child in ast.walk(node)
        if isinstance(child, ast.Attribute)
        and isinstance(child.ctx, ast.Load)
        and isinstance(child.value, ast.Name)
        and child.value.id == "self"
    )


def _class_attributes(handler: ast.ClassDef) -> frozenset[str]:
    """Everything ``self.NAME`` can find: attributes any method sets, methods, class-level names."""
    names = set()
    for node in handler.body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
            names.update(attr for attr, _ in _self_assignments(node))
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
    return frozenset(names)


def _calls(node: ast.AST, method: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == method
