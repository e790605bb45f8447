"""limits: module constants that bound the handler's tracked collections."""

from __future__ import annotations

import libcst as cst

from .base import FixTransformer, defines, insert_before, mark
from .shape import CACHE_AGE_LIMIT, CLEANUP_INTERVAL, HANDLER_CLASS, TRACKED_COLLECTIONS

LIMIT_ORDER = ("MAX_DELEGATION_TRACKING", "MAX_PROMPT_TRACKING", CACHE_AGE_LIMIT, CLEANUP_INTERVAL)


def _what_it_bounds(limit: str, tracked) -> str:
    if limit == CACHE_AGE_LIMIT:
        return "seconds a git-branch cache entry is kept"
    if limit == CLEANUP_INTERVAL:
        return "hook events between two cleanups"
    return "entries kept in " + ", ".join(c for c in tracked if TRACKED_COLLECTIONS[c] == limit)


class LimitsFix(FixTransformer):
    NAME = "limits"
    DESCRIPTION = (
        "Add MAX_DELEGATION_TRACKING, MAX_PROMPT_TRACKING, MAX_CACHE_AGE_SECONDS and "
        "CLEANUP_INTERVAL_EVENTS (values from the config), only those this layout's collections need."
    )

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        pending = {step.split(":", 1)[1] for step in self.steps if step.startswith("constant:")}
        if not pending:
            return updated_node
        lines = [mark(self.NAME, "bounds for what the handler keeps between events")]
        for name in (limit for limit in LIMIT_ORDER if limit in pending):
            lines.append(f"{name} = {self.settings.limit(name)}  # {_what_it_bounds(name, self.shape.tracked)}")
        return insert_before(updated_node, defines(cst.ClassDef, HANDLER_CLASS), self.statements("\n".join(lines)))
