"""limits: module constants that bound the handler's tracked collections."""

from __future__ import annotations

import libcst as cst

from .base import FixTransformer, defines, insert_before
from .plan import LimitStep
from .registry import fix_of_module
from .shape import CACHE_AGE_LIMIT, CLEANUP_INTERVAL, HANDLER_CLASS, TRACKED_COLLECTIONS

FIX = fix_of_module(__name__)


def _what_it_bounds(limit: str, tracked) -> str:
    if limit == CACHE_AGE_LIMIT:
        return "seconds a git-branch cache entry is kept"
    if limit == CLEANUP_INTERVAL:
        return "hook events between two cleanups"
    return "entries kept in " + ", ".join(c for c in tracked if TRACKED_COLLECTIONS[c] == limit)


class LimitsFix(FixTransformer):
    FIX = FIX

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        pending = [step.value for step in LimitStep if step in self.steps]  # in the enum's order
        if not pending:
            return updated_node
        lines = [FIX.mark("bounds for what the handler keeps between events")]
        for name in pending:
            lines.append(f"{name} = {self.settings.limit(name)}  # {_what_it_bounds(name, self.shape.tracked)}")
        return insert_before(updated_node, defines(cst.ClassDef, HANDLER_CLASS), self.statements("\n".join(lines)))
