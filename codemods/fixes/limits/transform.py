"""The limits' LibCST transformer: the constants, and claude-mpm 3.9.4-3.9.11's attributes reading them."""

from __future__ import annotations

import libcst as cst

from ...reading.features import CACHE_AGE_LIMIT, CLEANUP_INTERVAL, HANDLER_CLASS, TRACKED_COLLECTIONS
from ..base import FixTransformer, defines, find_method, insert_before, is_handler_class, replace_method
from . import FIX, LimitStep


def _what_it_bounds(limit: str, tracked) -> str:
    if limit == CACHE_AGE_LIMIT:
        return "seconds a git-branch cache entry is kept"
    if limit == CLEANUP_INTERVAL:
        return "hook events between two cleanups"
    return "entries kept in " + ", ".join(c for c in tracked if TRACKED_COLLECTIONS[c] == limit)


class LimitsFix(FixTransformer):
    FIX = FIX

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef) -> cst.ClassDef:
        """claude-mpm 3.9.4-3.9.11 keep the limits as attributes set to numbers: they take the configured ones."""
        upstream = self.shape.upstream
        wanted = LimitStep.CONFIGURED_ATTRIBUTES in self.steps and upstream is not None
        literal = set(upstream.literal_limits) if upstream is not None and wanted else set()
        init = find_method(updated_node, "__init__") if is_handler_class(updated_node) and literal else None
        if init is None:
            return updated_node
        return replace_method(
            updated_node, "__init__", cst.ensure_type(init.visit(_ConfiguredLimits(self, literal)), cst.FunctionDef)
        )

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        constants = (step for step in LimitStep if step is not LimitStep.CONFIGURED_ATTRIBUTES)
        pending = [step.value for step in constants if step in self.steps]  # in the enum's order
        if not pending:
            return updated_node
        lines = [FIX.mark("bounds for what the handler keeps between events")]
        for name in pending:
            lines.append(f"{name} = {self.settings.limit(name)}  # {_what_it_bounds(name, self.shape.tracked)}")
        return insert_before(updated_node, defines(cst.ClassDef, HANDLER_CLASS), self.statements("\n".join(lines)))


class _ConfiguredLimits(cst.CSTTransformer):
    """``self.NAME = 200`` becomes ``self.NAME = NAME``: the module constant, from the config."""

    def __init__(self, fix: LimitsFix, names: set[str]) -> None:
        super().__init__()
        self.fix, self.names = fix, names

    def leave_SimpleStatementLine(self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine):
        assign = updated_node.body[0] if len(updated_node.body) == 1 else None
        if not (
            isinstance(assign, cst.Assign)
            and len(assign.targets) == 1
            and isinstance(target := assign.targets[0].target, cst.Attribute)
            and isinstance(target.value, cst.Name)
            and target.value.value == "self"
            and target.attr.value in self.names
            and isinstance(assign.value, cst.Integer)
        ):
            return updated_node
        name = target.attr.value
        replacement = self.fix.statement(f"self.{name} = {name}  {FIX.mark('the configured limit')}")
        return replacement.with_changes(leading_lines=updated_node.leading_lines)
