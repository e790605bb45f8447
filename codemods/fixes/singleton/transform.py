"""The singleton's LibCST transformer: the globals, main() sharing one handler; the 3.9.9-3.9.11 repairs."""

from __future__ import annotations

import libcst as cst

from ...reading.features import HANDLER_CLASS, REPLY_METHOD
from ..base import FixTransformer, Statement, defines, insert_before, is_handler_class, prepend_to_body
from ..upstream_repair import DropStatements, calls_attribute, calls_or_registers, is_call_statement, visit_methods
from . import FIX, SingletonStep

EXIT_REPLY_NOTE = FIX.mark("handle() has replied; main() returns, so a long-lived process can call it again")
ALARM_REPLY_NOTE = FIX.mark("the except block that catches this exit replies, once")

GLOBALS_CODE = f"""
{FIX.mark("the one handler of this process")}
_global_handler = None
_handler_lock = threading.Lock()
"""

SHARED_HANDLER_CODE = f"""
{FIX.mark("reuse the process's handler instead of building one per call")}
with _handler_lock:
    if _global_handler is None:
        _global_handler = {HANDLER_CLASS}()
    $name = _global_handler
"""


# A module function the singleton fix adds for 3.9.9+, whose handler waits for stdin with select().
STDIN_HELPER = "_stdin_ready"
STDIN_HELPER_CODE = f'''
{FIX.mark("main() may be called by a process whose stdin has no file descriptor")}
def {STDIN_HELPER}(timeout):
    """Whether the hook event can be read from stdin within ``timeout`` seconds.

    A long-lived caller may hand main() an in-memory stdin, which select() refuses: it is ready.
    """
    try:
        descriptor = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return True
    ready, _, _ = select.select([descriptor], [], [], timeout)
    return bool(ready)
'''


def is_stdin_select(statement: cst.BaseStatement) -> bool:
    """``ready, _, _ = select.select([sys.stdin], ...)``"""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    assign = statement.body[0]
    return (
        isinstance(assign, cst.Assign)
        and len(assign.targets) == 1
        and isinstance(assign.targets[0].target, cst.Tuple)
        and isinstance(assign.targets[0].target.elements[0].value, cst.Name)
        and isinstance(assign.value, cst.Call)
        and isinstance(assign.value.func, cst.Attribute)
        and assign.value.func.attr.value == "select"
        and bool(assign.value.args)
        and "sys.stdin" in cst.Module(body=[]).code_for_node(assign.value.args[0].value)
    )


class WaitForStdinAnyway(cst.CSTTransformer):
    """``ready, _, _ = select.select([sys.stdin], [], [], T)`` becomes ``ready = _stdin_ready(T)``."""

    def __init__(self, fix: FixTransformer) -> None:
        super().__init__()
        self.fix = fix

    def leave_SimpleStatementLine(self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine):
        if not is_stdin_select(updated_node):
            return updated_node
        assign = cst.ensure_type(updated_node.body[0], cst.Assign)
        target = cst.ensure_type(assign.targets[0].target, cst.Tuple).elements[0].value
        call = cst.ensure_type(assign.value, cst.Call)
        code = cst.Module(body=[]).code_for_node
        timeout = code(call.args[3].value) if len(call.args) > 3 else "None"
        note = FIX.mark("select() refuses a stdin with no file descriptor")
        replacement: Statement = self.fix.statement(f"{code(target)} = {STDIN_HELPER}({timeout})  {note}")
        return replacement.with_changes(leading_lines=updated_node.leading_lines)


class _ShareHandler(cst.CSTTransformer):
    """Replace ``name = ClaudeHookHandler()`` in main() with the locked, shared instance."""

    def __init__(self, fix: SingletonFix) -> None:
        super().__init__()
        self.fix = fix

    def leave_SimpleStatementLine(self, original_node, updated_node):
        name = _constructed_name(updated_node)
        if name is None:
            return updated_node
        shared = self.fix.statement(SHARED_HANDLER_CODE.replace("$name", name))
        return shared.with_changes(leading_lines=[*updated_node.leading_lines, *shared.leading_lines])


def _constructed_name(statement: cst.SimpleStatementLine):
    if len(statement.body) != 1 or not isinstance(statement.body[0], cst.Assign):
        return None
    assign = statement.body[0]
    if len(assign.targets) != 1 or not isinstance(assign.targets[0].target, cst.Name):
        return None
    name = assign.targets[0].target.value
    value = assign.value
    if (
        name != "_global_handler"
        and isinstance(value, cst.Call)
        and isinstance(value.func, cst.Name)
        and value.func.value == HANDLER_CLASS
        and not value.args
    ):
        return name
    return None


class SingletonFix(FixTransformer):
    FIX = FIX

    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.FunctionDef:
        if updated_node.name.value != "main":
            return updated_node
        if SingletonStep.MAIN_RETURNS in self.steps and self.shape.upstream is not None:
            exits = calls_or_registers(self.shape.upstream.exit_replies)
            drop = DropStatements(lambda statement: is_call_statement(statement, exits), EXIT_REPLY_NOTE)
            updated_node = cst.ensure_type(updated_node.visit(drop), cst.FunctionDef)
        if SingletonStep.MAIN not in self.steps:
            return updated_node
        shared = cst.ensure_type(updated_node.visit(_ShareHandler(self)), cst.FunctionDef)
        return prepend_to_body(shared, [self.statement("global _global_handler")])

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef) -> cst.ClassDef:
        """claude-mpm 3.9.9+: the timeout handler replies once; stdin is waited for without select() on it."""
        upstream = self.shape.upstream
        if not is_handler_class(updated_node) or upstream is None:
            return updated_node
        edits: dict[str, cst.CSTTransformer] = {}
        if SingletonStep.ALARM_ONCE in self.steps:
            replies = calls_attribute(REPLY_METHOD)
            edits["handle"] = DropStatements(
                lambda statement: is_call_statement(statement, replies),
                ALARM_REPLY_NOTE,
                in_functions=upstream.alarm_replies,
            )
        if SingletonStep.STDIN_WAIT in self.steps:
            edits.update(dict.fromkeys(upstream.stdin_waits, WaitForStdinAnyway(self)))
        return visit_methods(updated_node, edits) if edits else updated_node

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        if SingletonStep.GLOBALS in self.steps:
            updated_node = insert_before(updated_node, defines(cst.FunctionDef, "main"), self.statements(GLOBALS_CODE))
        if SingletonStep.STDIN_WAIT in self.steps:
            helper = self.statements(STDIN_HELPER_CODE)
            updated_node = insert_before(updated_node, defines(cst.FunctionDef, "main"), helper)
        return self.add_pending_imports(updated_node)
