"""The teardown's LibCST transformer: the ``__del__`` that closes the pool."""

from __future__ import annotations

import libcst as cst

from ..base import FixTransformer, find_method, insert_method_after, is_handler_class, replace_method
from . import FIX, TeardownStep

DEL_CODE = f'''
{FIX.mark()}
def __del__(self):
    """Close the pooled Socket.IO clients when the handler goes away."""
    # During interpreter finalization close_all() only lets go: the pool closed its clients at exit.
    pool = getattr(self, "connection_pool", None)  # missing if __init__ failed half-way
    if pool is not None:
        try:
            pool.close_all()
        except Exception:
            pass
'''


class TeardownFix(FixTransformer):
    FIX = FIX

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef) -> cst.ClassDef:
        if not is_handler_class(updated_node) or TeardownStep.DEL not in self.steps:
            return updated_node
        teardown = cst.ensure_type(self.statement(DEL_CODE), cst.FunctionDef)
        existing = find_method(updated_node, "__del__")
        if existing is None:
            return insert_method_after(updated_node, None, teardown)
        leading_lines = [*existing.leading_lines, *teardown.leading_lines]
        return replace_method(updated_node, "__del__", teardown.with_changes(leading_lines=leading_lines))
