"""Repair helpers for claude-mpm's own 3.9.4-3.9.11 fix that several fixes share.

Upstream's code is kept where it works and edited in place where it breaks the hook: a
statement taken out leaves our mark where it was, so that ``check`` (and the next run)
tells a repaired file from upstream's, and a reader sees what was removed and why.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import libcst as cst

from .base import block_statements, with_class_body


def visit_methods(classdef: cst.ClassDef, edits: dict[str, cst.CSTTransformer]) -> cst.ClassDef:
    """Run each transformer in ``edits`` over the method of that name (the other statements are kept as they are)."""
    body = [
        cst.ensure_type(s.visit(edits[s.name.value]), cst.FunctionDef)
        if isinstance(s, cst.FunctionDef) and s.name.value in edits
        else s
        for s in block_statements(classdef)
    ]
    return with_class_body(classdef, body)


class _CallFinder(cst.CSTVisitor):
    def __init__(self, test: Callable[[cst.Call], bool]) -> None:
        self.test = test
        self.found = False

    def visit_Call(self, node: cst.Call) -> bool:
        self.found = self.found or self.test(node)
        return not self.found


def contains_call(node: cst.CSTNode, test: Callable[[cst.Call], bool]) -> bool:
    finder = _CallFinder(test)
    node.visit(finder)
    return finder.found


def calls_attribute(name: str) -> Callable[[cst.Call], bool]:
    """``anything.name(...)``"""
    return lambda call: isinstance(call.func, cst.Attribute) and call.func.attr.value == name


def is_call_statement(statement: cst.BaseStatement, test: Callable[[cst.Call], bool]) -> bool:
    """A statement that is nothing but a call passing ``test``."""
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, cst.Call)
        and test(statement.body[0].value)
    )


def calls_or_registers(names: Collection[str]) -> Callable[[cst.Call], bool]:
    """``name()`` or ``atexit.register(name)`` for one of ``names``."""

    def test(call: cst.Call) -> bool:
        if isinstance(call.func, cst.Name):
            return call.func.value in names
        return (
            isinstance(call.func, cst.Attribute)
            and call.func.attr.value == "register"
            and isinstance(call.func.value, cst.Name)
            and call.func.value.value == "atexit"
            and any(isinstance(arg.value, cst.Name) and arg.value.value in names for arg in call.args)
        )

    return test


def drop_from_block(
    block: cst.IndentedBlock, drop: Callable[[cst.BaseStatement], bool], note: str, through_end: bool = False
) -> cst.IndentedBlock:
    """Take the statements ``drop`` picks out of a block (``through_end``: and all that follow the first, which
    may use what it bound); the mark ``note`` stands where they were."""
    body = list(block.body)
    if not any(drop(statement) for statement in body):
        return block
    comment = cst.EmptyLine(indent=True, comment=cst.Comment(note))
    kept: list[cst.BaseStatement] = []
    waiting: list[cst.EmptyLine] = []  # the mark (and blank lines) for the next statement kept
    for statement in body:
        if not isinstance(statement, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            kept.append(statement)
            continue
        if drop(statement) or (through_end and waiting):
            blank = [line for line in statement.leading_lines if line.comment is None]
            waiting = [*waiting, *blank, *([] if waiting else [comment])]
            continue
        if waiting:
            statement = statement.with_changes(leading_lines=[*waiting, *statement.leading_lines])
            waiting = []
        kept.append(statement)
    if not kept:
        kept = [cst.SimpleStatementLine([cst.Pass()], leading_lines=waiting)]
        waiting = []
    return block.with_changes(body=kept, footer=[*waiting, *block.footer])


class DropStatements(cst.CSTTransformer):
    """``drop_from_block`` over every block of a node, or only over except blocks and named inner functions."""

    def __init__(
        self,
        drop: Callable[[cst.BaseStatement], bool],
        note: str,
        *,
        in_except: bool = False,
        in_functions: Collection[str] = (),
        through_end: bool = False,
    ) -> None:
        super().__init__()
        self.drop, self.note, self.in_except, self.in_functions = drop, note, in_except, in_functions
        self.through_end = through_end

    def _dropped(self, block: cst.IndentedBlock) -> cst.IndentedBlock:
        return drop_from_block(block, self.drop, self.note, self.through_end)

    def _everywhere(self) -> bool:
        return not self.in_except and not self.in_functions

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock):
        return self._dropped(updated_node) if self._everywhere() else updated_node

    def leave_ExceptHandler(self, original_node: cst.ExceptHandler, updated_node: cst.ExceptHandler):
        if not self.in_except or not isinstance(updated_node.body, cst.IndentedBlock):
            return updated_node
        return updated_node.with_changes(body=self._dropped(updated_node.body))

    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef):
        if updated_node.name.value not in self.in_functions or not isinstance(updated_node.body, cst.IndentedBlock):
            return updated_node
        return updated_node.with_changes(body=self._dropped(updated_node.body))
