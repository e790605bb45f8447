"""The fixes: one line each in ``FIXES``, and everything derived from them.

The engine's order, ``fixes``, the ``--select`` closure, ``check --format github``'s lines and
what ``verify`` expects all come from here. Standard library only: ``check`` and ``fixes`` import
this, never libcst; a fix's transformer is imported (with libcst) only when there is work to do.

Adding a fix: a package ``codemods/fixes/<fix>/`` (its record ``FIX`` in ``__init__.py``, its
transformer in ``transform.py``), one line here, one test module.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..reading.features import HANDLER_CLASS, Shape
from ..reading.layouts import Treatment, layout_of
from . import connection_pool, limits, periodic_cleanup, singleton, teardown
from .plan import UPSTREAM_REASON, Plan, not_applicable
from .record import Fix

FIXES: tuple[Fix, ...] = (
    connection_pool.FIX,
    singleton.FIX,
    limits.FIX,
    periodic_cleanup.FIX,
    teardown.FIX,
)

FIX_NAMES: tuple[str, ...] = tuple(fix.name for fix in FIXES)
BY_NAME: dict[str, Fix] = {fix.name: fix for fix in FIXES}


def plan_fixes(shape: Shape) -> dict[str, Plan]:
    """Every fix's verdict, in registry order; a layout left as it is (4.x and later) has none applicable."""
    if layout_of(shape).treatment is Treatment.LEAVE:
        return {fix.name: not_applicable(fix, UPSTREAM_REASON) for fix in FIXES}
    return {fix.name: fix.plan(shape) for fix in FIXES}


def anchor_line(shape: Shape, name: str) -> int:
    """The handler line a fix is about: what ``check --format github`` points at."""
    return next((shape.lines[key] for key in BY_NAME[name].anchors if key in shape.lines), shape.lines["class"])


def verify_expectations() -> dict[str, Any]:
    """What ``verify`` checks in a patched handler, gathered from the fixes' records (JSON-serialisable):
    ``handler_class``, ``pool_attribute``, ``cleanup_interval`` and ``size_limits``."""
    expected: dict[str, Any] = {"handler_class": HANDLER_CLASS}
    for fix in FIXES:
        expected.update({key: dict(value) if isinstance(value, dict) else value for key, value in fix.verify.items()})
    return expected


class UnknownFix(ValueError):
    """A name given to --select or the config's ``fixes`` that is not a fix."""


def resolve_selection(names: Iterable[str]) -> tuple[tuple[str, ...], list[str]]:
    """Expand a selection with what each fix needs; return it in registry order and the notes to show."""
    wanted = []
    for name in names:
        if name not in BY_NAME:
            raise UnknownFix(f"unknown fix {name!r} (the fixes are: {', '.join(FIX_NAMES)})")
        wanted.append(name)
    notes = []
    for name in list(wanted):
        for needed in BY_NAME[name].requires:
            if needed not in wanted:
                wanted.append(needed)
                notes.append(f"{name} needs {needed}: selected it too")
    return tuple(name for name in FIX_NAMES if name in wanted), notes
