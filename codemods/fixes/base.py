"""What the fix transformers share: pruned traversal, parsing our snippets, placing them.

Each fix is a plain ``libcst.CSTTransformer`` run over one shared parse. It never descends
below the module's top-level statements (walking the whole tree would cost more than the
fix itself): the handler's methods are edited in ``leave_ClassDef``, ``main()`` in
``leave_FunctionDef``, module-level insertions in ``leave_Module``.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Callable, ClassVar, Union

import libcst as cst

from ..reading.features import HANDLER_CLASS, Shape, UnsupportedShape
from ..settings import Settings
from .plan import Plan
from .record import Fix

# A statement that can carry comments and blank lines above it (``leading_lines``): what a module body holds.
Statement = Union[cst.SimpleStatementLine, cst.BaseCompoundStatement]


class FixTransformer(cst.CSTTransformer):
    """Base of every fix: knows its record, its plan (pending steps), the settings, the file's shape and its
    formatting. It can run alone on a parsed module (``module.visit(Fix(plan, settings, module, shape))``)."""

    FIX: ClassVar[Fix]  # the fix's record, from its package's ``__init__`` (``registry.FIXES`` lists it)

    def __init__(self, plan: Plan, settings: Settings, module: cst.Module, shape: Shape) -> None:
        super().__init__()
        self.plan = plan
        self.steps: frozenset[Enum] = plan.steps
        self.settings = settings
        self.shape = shape
        self._config = module.config_for_parsing
        self._indent = module.default_indent
        self._newline = module.default_newline

    def on_visit(self, node: cst.CSTNode) -> bool:
        """Descend into the module only: every edit is made on a top-level statement as it is left."""
        super().on_visit(node)
        return isinstance(node, cst.Module)

    def statements(self, code: str) -> list[Statement]:
        """Parse a snippet written with 4-space indents in the module's own indentation and newlines."""
        lines = []
        for line in code.strip("\n").split("\n"):
            stripped = line.lstrip(" ")
            lines.append(self._indent * ((len(line) - len(stripped)) // 4) + stripped)
        # Join with the module's newline: docstrings are tokens, their line ends are not rewritten.
        parsed = cst.parse_module(self._newline.join(lines) + self._newline, config=self._config)
        body = list(parsed.body)
        body[0] = body[0].with_changes(leading_lines=[*parsed.header, *body[0].leading_lines])
        return body

    def statement(self, code: str) -> Statement:
        (only,) = self.statements(code)
        return only

    def add_pending_imports(self, module: cst.Module) -> cst.Module:
        """Add ``import NAME`` for each module the plan says the file lacks (``plan.missing_imports``)."""
        for name in sorted(self.plan.imports):
            module = add_import(module, self.statement(f"import {name}  {self.FIX.mark()}"))
        return module


def is_handler_class(node: cst.ClassDef) -> bool:
    return node.name.value == HANDLER_CLASS


def block_statements(node: cst.ClassDef | cst.FunctionDef) -> list[cst.BaseStatement]:
    """The statements of a class or function body; a one-line body (``def f(): pass``) is not a shape we patch."""
    if not isinstance(node.body, cst.IndentedBlock):
        raise UnsupportedShape(f"{node.name.value} has its whole body on one line")
    return list(node.body.body)


def find_method(classdef: cst.ClassDef, name: str) -> cst.FunctionDef | None:
    for statement in block_statements(classdef):
        if isinstance(statement, cst.FunctionDef) and statement.name.value == name:
            return statement
    return None


def with_class_body(classdef: cst.ClassDef, body: Sequence[cst.BaseStatement]) -> cst.ClassDef:
    return classdef.with_changes(body=classdef.body.with_changes(body=list(body)))


def replace_method(classdef: cst.ClassDef, name: str, replacement: cst.FunctionDef) -> cst.ClassDef:
    body = [
        replacement if isinstance(s, cst.FunctionDef) and s.name.value == name else s
        for s in block_statements(classdef)
    ]
    return with_class_body(classdef, body)


def insert_method_after(classdef: cst.ClassDef, after: str | None, method: Statement) -> cst.ClassDef:
    """Put ``method`` right after method ``after`` (at the end of the class if None or absent)."""
    body = block_statements(classdef)
    position = len(body)
    for index, statement in enumerate(body):
        if isinstance(statement, cst.FunctionDef) and statement.name.value == after:
            position = index + 1
    blank = cst.EmptyLine(indent=False)  # a blank line, not one holding the class body's indentation
    body.insert(position, method.with_changes(leading_lines=[blank, *method.leading_lines]))
    return with_class_body(classdef, body)


def prepend_to_method(classdef: cst.ClassDef, name: str, statements: Sequence[cst.BaseStatement]) -> cst.ClassDef:
    """Insert statements at the start of method ``name`` (see ``prepend_to_body``)."""
    method = find_method(classdef, name)
    if method is None:
        raise UnsupportedShape(f"{classdef.name.value} has no {name}() method")
    return replace_method(classdef, name, prepend_to_body(method, statements))


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def _is_global(statement: cst.BaseStatement) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and all(
        isinstance(small, (cst.Global, cst.Nonlocal)) for small in statement.body
    )


def prepend_to_body(function: cst.FunctionDef, statements: Sequence[cst.BaseStatement]) -> cst.FunctionDef:
    """Insert statements at the start of a function, after its docstring and global declarations."""
    body = block_statements(function)
    position = 0
    if body and _is_docstring(body[0]):
        position = 1
    while position < len(body) and _is_global(body[position]):
        position += 1
    body[position:position] = statements
    return function.with_changes(body=function.body.with_changes(body=body))


def insert_before(
    module: cst.Module, predicate: Callable[[Statement], bool], statements: Sequence[Statement]
) -> cst.Module:
    """Insert top-level statements, two blank lines first, before the first one matching ``predicate``."""
    body = list(module.body)
    position = next(index for index, statement in enumerate(body) if predicate(statement))
    first = statements[0]
    blank = [cst.EmptyLine(), cst.EmptyLine()]
    body[position:position] = [first.with_changes(leading_lines=[*blank, *first.leading_lines]), *statements[1:]]
    return module.with_changes(body=body)


def defines(kind: type[cst.ClassDef] | type[cst.FunctionDef], name: str) -> Callable[[Statement], bool]:
    """A predicate for ``insert_before``: the top-level class or function called ``name``."""
    return lambda statement: isinstance(statement, kind) and statement.name.value == name


def replace_statement(
    module: cst.Module,
    predicate: Callable[[Statement], bool],
    statements: Sequence[Statement],
    keep_comments: bool = False,
) -> cst.Module:
    """Put ``statements`` where the first top-level statement matching ``predicate`` was.

    The blank lines before it stay; its comments (our old mark) go with it, unless ``keep_comments``."""
    body = list(module.body)
    position = next(index for index, statement in enumerate(body) if predicate(statement))
    blank = [line for line in body[position].leading_lines if keep_comments or line.comment is None]
    first = statements[0]
    body[position : position + 1] = [first.with_changes(leading_lines=[*blank, *first.leading_lines]), *statements[1:]]
    return module.with_changes(body=body)


def _imported_modules(statement: cst.BaseStatement) -> list[str]:
    if not isinstance(statement, cst.SimpleStatementLine):
        return []
    return [
        cst.Module(body=[]).code_for_node(alias.name)
        for small in statement.body
        if isinstance(small, cst.Import)
        for alias in small.names
        if alias.asname is None
    ]


def _is_import(statement: Statement) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and isinstance(
        statement.body[0], (cst.Import, cst.ImportFrom)
    )


def add_import(module: cst.Module, statement: Statement) -> cst.Module:
    """Add an import after the module's first run of top-level imports, unless it is there already.

    Several fixes may need the same module in one run (the pool and the singleton both use
    ``threading``): the first one adds it."""
    body = list(module.body)
    if set(_imported_modules(statement)) <= {name for s in body for name in _imported_modules(s)}:
        return module
    first = next((index for index, s in enumerate(body) if _is_import(s)), None)
    if first is None:
        position = 1 if body and _is_docstring(body[0]) else 0
    else:
        position = first
        while position < len(body) and _is_import(body[position]):
            position += 1
    body.insert(position, statement)
    return module.with_changes(body=body)
