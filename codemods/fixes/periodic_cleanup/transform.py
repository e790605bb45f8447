"""The periodic cleanup's LibCST transformer: the cleanup method, the event counter, the call in handle()."""

from __future__ import annotations

import libcst as cst

from ...reading.features import CACHE_AGE_LIMIT, CLEANUP_INTERVAL, CLEANUP_METHOD, EVENT_COUNTER, TRACKED_COLLECTIONS
from ..base import FixTransformer, find_method, insert_method_after, is_handler_class, prepend_to_method, replace_method
from . import FIX, CleanupStep

COUNTER_CODE = f"self.{EVENT_COUNTER} = 0  {FIX.mark()}"

COUNT_AND_CLEAN_CODE = f"""
{FIX.mark("keep a long-lived handler's state bounded")}
self.{EVENT_COUNTER} += 1
if self.{EVENT_COUNTER} % {CLEANUP_INTERVAL} == 0:
    self.{CLEANUP_METHOD}()
"""

METHOD_HEAD = f'''
{FIX.mark()}
def {CLEANUP_METHOD}(self):
    """Trim tracked collections to their limits and expire old git-branch cache entries."""'''

TRIM_CODE = """
    # Dicts keep insertion order: the first keys are the oldest.
    for entries, limit in (
$pairs
    ):
        for key in list(entries)[: max(len(entries) - limit, 0)]:
            del entries[key]"""

EXPIRE_CODE = f"""
    expired_before = time.time() - {CACHE_AGE_LIMIT}
    for key, cached_at in list(self._git_branch_cache_time.items()):
        if cached_at < expired_before:
            del self._git_branch_cache_time[key]
            self._git_branch_cache.pop(key, None)"""


def cleanup_method_code(tracked, has_git_cache: bool) -> str:
    """The cleanup method for a layout: it reads only the collections that layout's __init__ sets."""
    parts = [METHOD_HEAD]
    if tracked:
        pairs = "\n".join(f"        (self.{attr}, {TRACKED_COLLECTIONS[attr]})," for attr in tracked)
        parts.append(TRIM_CODE.replace("$pairs", pairs))
    if has_git_cache:
        parts.append(EXPIRE_CODE)
    return "".join(parts)


class PeriodicCleanupFix(FixTransformer):
    FIX = FIX

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef) -> cst.ClassDef:
        if not is_handler_class(updated_node):
            return updated_node
        if CleanupStep.COUNTER in self.steps:
            updated_node = prepend_to_method(updated_node, "__init__", [self.statement(COUNTER_CODE)])
        if CleanupStep.CALL in self.steps:
            updated_node = prepend_to_method(updated_node, "handle", self.statements(COUNT_AND_CLEAN_CODE))
        if CleanupStep.METHOD in self.steps:
            method = cst.ensure_type(
                self.statement(cleanup_method_code(self.shape.tracked, self.shape.has_git_cache)), cst.FunctionDef
            )
            existing = find_method(updated_node, CLEANUP_METHOD)  # claude-mpm 3.9.4-3.9.11's own: ours takes its place
            if existing is None:
                updated_node = insert_method_after(updated_node, "__init__", method)
            else:
                leading_lines = [*existing.leading_lines, *method.leading_lines]
                updated_node = replace_method(
                    updated_node, CLEANUP_METHOD, method.with_changes(leading_lines=leading_lines)
                )
        return updated_node

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        return self.add_pending_imports(updated_node)
