"""The fixes: one record each, and everything derived from the records.

A record names the fix, says what it does and needs, which modules its code may import,
where in the handler it acts, the planner that decides its steps and the ``Enum`` of
those steps, and its transformer. The engine's order, the marks, ``fixes``, the
``--select`` closure and ``check --format github``'s lines all come from here.
Standard library only: ``check`` and ``fixes`` import this, never libcst; the transformer
is imported (with libcst) only when there is work to do.

Adding a fix: a record here, a planner (and its steps) in ``plan``, a transformer module,
a test module.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Callable

from ..reading.shape import (
    CLEANUP_INTERVAL,
    GIT_CACHE,
    HANDLER_CLASS,
    MARK_PREFIX,
    POOL_ATTRIBUTE,
    TRACKED_COLLECTIONS,
    Shape,
)
from . import plan
from .plan import Plan

if TYPE_CHECKING:
    from .base import FixTransformer


@dataclass(frozen=True)
class Fix:
    """One fix: its name is part of the contract (CLI, config, JSON, the marks in patched files)."""

    name: str
    description: str
    steps: type[Enum]
    planner: Callable[[Fix, Shape], Plan]
    transformer: str  # "module.Class" in this package
    anchors: tuple[str, ...]  # where it acts, as keys of Shape.lines: the first that exists
    requires: tuple[str, ...] = ()  # fixes it cannot work without (pulled in by --select)
    imports: tuple[str, ...] = ()  # modules its injected code uses (imported where the file lacks them)

    def plan(self, shape: Shape) -> Plan:
        return self.planner(self, shape)

    def mark(self, note: str = "") -> str:
        """The comment that tells our injected code apart from upstream's (``shape.read_marks`` reads it)."""
        return f"# {MARK_PREFIX} {self.name}" + (f" ({note})" if note else "")

    @property
    def module(self) -> str:
        return f"{__package__}.{self.transformer.split('.')[0]}"

    def transformer_class(self) -> type[FixTransformer]:
        """The LibCST transformer (imports libcst)."""
        cls: type[FixTransformer] = getattr(importlib.import_module(self.module), self.transformer.split(".")[1])
        return cls


FIXES: tuple[Fix, ...] = (
    Fix(
        "connection-pool",
        "Add SocketIOConnectionPool (at most max_connections live clients, dead ones dropped); "
        "the handler gets its Socket.IO client from the pool instead of building one per event. "
        "Replaces claude-mpm 3.9.4-3.9.11's own pool in place, and its retry through an immediate reconnection.",
        steps=plan.PoolStep,
        planner=plan.plan_connection_pool,
        transformer="connection_pool.ConnectionPoolFix",
        anchors=("builder", "__init__"),
        imports=("sys", "threading", "time", "weakref"),
    ),
    Fix(
        "singleton",
        "Add module globals _global_handler and _handler_lock; main() creates the handler once, "
        "under the lock, and reuses it. In claude-mpm 3.9.9-3.9.11: one reply per hook, and a main() that returns.",
        steps=plan.SingletonStep,
        planner=plan.plan_singleton,
        transformer="singleton.SingletonFix",
        anchors=("main",),
        imports=("threading",),
    ),
    Fix(
        "limits",
        "Add MAX_DELEGATION_TRACKING, MAX_PROMPT_TRACKING, MAX_CACHE_AGE_SECONDS and "
        "CLEANUP_INTERVAL_EVENTS (values from the config), only those this layout's collections need; "
        "claude-mpm 3.9.4-3.9.11's limit attributes read them.",
        steps=plan.LimitStep,
        planner=plan.plan_limits,
        transformer="limits.LimitsFix",
        anchors=("__init__",),
    ),
    Fix(
        "periodic-cleanup",
        "Add _cleanup_old_entries() (trims each tracked collection to its limit, oldest first; expires "
        "git-branch cache entries); handle() counts events and calls it every CLEANUP_INTERVAL_EVENTS. "
        "Replaces claude-mpm 3.9.4-3.9.11's own, which keeps the keys that sort last.",
        steps=plan.CleanupStep,
        planner=plan.plan_periodic_cleanup,
        transformer="periodic_cleanup.PeriodicCleanupFix",
        anchors=("handle",),
        requires=("limits",),
        imports=("time",),
    ),
    Fix(
        "teardown",
        "__del__ closes the connection pool (close_all()); safe when __init__ failed half-way, "
        "and never blocks during interpreter finalization.",
        steps=plan.TeardownStep,
        planner=plan.plan_teardown,
        transformer="teardown.TeardownFix",
        anchors=("__del__", "class"),
        requires=("connection-pool",),
    ),
)

FIX_NAMES: tuple[str, ...] = tuple(fix.name for fix in FIXES)
BY_NAME: dict[str, Fix] = {fix.name: fix for fix in FIXES}


def fix_of_module(module: str) -> Fix:
    """The record of the fix whose transformer lives in ``module`` (a transformer module's ``__name__``)."""
    (fix,) = (fix for fix in FIXES if fix.module == module)
    return fix


def plan_fixes(shape: Shape) -> dict[str, Plan]:
    """Every fix's verdict, in registry order."""
    if shape.upstream_fixed and shape.upstream is None:  # 4.x and later; 3.9.4-3.9.11 are repaired
        return {fix.name: plan.not_applicable(fix, plan.UPSTREAM_REASON) for fix in FIXES}
    return {fix.name: fix.plan(shape) for fix in FIXES}


def anchor_line(shape: Shape, name: str) -> int:
    """The handler line a fix is about: what ``check --format github`` points at."""
    return next((shape.lines[key] for key in BY_NAME[name].anchors if key in shape.lines), shape.lines["class"])


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


def verify_expectations() -> dict:
    """What ``verify``'s long-lived run measures on a handler, as JSON for its driver (it imports nothing of ours)."""
    return {
        "handler_class": HANDLER_CLASS,
        "pool_attribute": POOL_ATTRIBUTE,
        "cleanup_interval": CLEANUP_INTERVAL,
        "size_limits": {**TRACKED_COLLECTIONS, GIT_CACHE[0]: None},
    }
