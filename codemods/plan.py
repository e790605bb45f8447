"""Decide, per fix, whether it is pending, present or not applicable, and which steps remain.

Pure standard library: ``check`` runs only this and ``shape``. A fix is made of small
steps that are each done or not, so a partial patch (``--select``, a hand edit) is
completed without duplicating anything. Each fix's steps are an ``Enum`` here, next to
the planner that chooses them; the fix's record (``registry.FIXES``) names both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from .shape import (
    CACHE_AGE_LIMIT,
    CLEANUP_INTERVAL,
    CLEANUP_METHOD,
    EVENT_COUNTER,
    POOL_ATTRIBUTE,
    POOL_CLASS,
    Shape,
    pool_is_outdated,
)
from .status import FixStatus

if TYPE_CHECKING:
    from .registry import Fix

UPSTREAM_REASON = "fixed upstream (claude-mpm 3.9.4+ ships its own _global_handler and connection pool): nothing to do"
NO_COLLECTIONS = (
    "nothing to bound: __init__ keeps no active_delegations, delegation_requests, pending_prompts or git cache"
)
NO_CLIENT = "the handler builds no Socket.IO client"
STALE_POOL = (
    "the connection pool an older fix-memory-leaks injected loses events and can hang hook processes "
    "at exit: apply replaces it"
)


@dataclass(frozen=True)
class Plan:
    """One fix's verdict on one file: what is left to do (``steps``, and the modules to import)."""

    name: str
    status: FixStatus
    reason: str = ""
    steps: frozenset[Enum] = field(default_factory=frozenset)
    imports: tuple[str, ...] = ()  # modules the fix's code uses that the file does not bind, to be imported


def not_applicable(fix: Fix, reason: str) -> Plan:
    return Plan(fix.name, FixStatus.NOT_APPLICABLE, reason)


def verdict(fix: Fix, steps: Iterable[Enum], imports: Iterable[str] = (), reason: str = "") -> Plan:
    """Pending with what is left, or present when nothing is; a step of another fix is a bug, caught here."""
    steps = frozenset(steps)
    foreign = [step for step in steps if not isinstance(step, fix.steps)]
    if foreign:
        raise TypeError(f"{fix.name}: {foreign[0]!r} is not one of its steps ({fix.steps.__name__})")
    imports = tuple(imports)
    if not steps and not imports:
        return Plan(fix.name, FixStatus.PRESENT)
    return Plan(fix.name, FixStatus.PENDING, reason, steps, imports)


def missing_imports(shape: Shape, fix: Fix) -> list[str]:
    """Each module the fix's code uses (``fix.imports``) that the file does not bind."""
    return [name for name in fix.imports if name not in shape.module_names]


class PoolStep(Enum):
    POOL_CLASS = "pool-class"  # the SocketIOConnectionPool class (replacing an outdated one of ours)
    POOL_ATTRIBUTE = "pool-attribute"  # self.connection_pool = ... in __init__
    USE_POOL = "use-pool"  # the methods that built a socketio.Client take it from the pool


def plan_connection_pool(fix: Fix, shape: Shape) -> Plan:
    if not shape.has_socketio_client:
        return not_applicable(fix, NO_CLIENT)
    stale = pool_is_outdated(shape.pool_revision)
    steps = []
    imports: list[str] = []
    if POOL_CLASS not in shape.module_names or stale:  # the pool's code is what needs the imports
        steps.append(PoolStep.POOL_CLASS)
        imports += missing_imports(shape, fix)
    if POOL_ATTRIBUTE not in shape.init_attrs:
        steps.append(PoolStep.POOL_ATTRIBUTE)
    if shape.client_builders or (stale and shape.synced_getters):
        steps.append(PoolStep.USE_POOL)
    return verdict(fix, steps, imports, STALE_POOL if stale else "")


class SingletonStep(Enum):
    GLOBALS = "globals"  # module globals _global_handler and _handler_lock
    MAIN = "main"  # main() reuses the one handler


def plan_singleton(fix: Fix, shape: Shape) -> Plan:
    steps = []
    if not {"_global_handler", "_handler_lock"} <= shape.module_names:
        steps.append(SingletonStep.GLOBALS)
    if shape.main_builds_handler:
        steps.append(SingletonStep.MAIN)
    return verdict(fix, steps, missing_imports(shape, fix))


class LimitStep(Enum):
    """One limit constant to add; the members' order is the order they are written in."""

    MAX_DELEGATION_TRACKING = "MAX_DELEGATION_TRACKING"
    MAX_PROMPT_TRACKING = "MAX_PROMPT_TRACKING"
    MAX_CACHE_AGE_SECONDS = CACHE_AGE_LIMIT
    CLEANUP_INTERVAL_EVENTS = CLEANUP_INTERVAL


def plan_limits(fix: Fix, shape: Shape) -> Plan:
    if not shape.needed_limits:
        return not_applicable(fix, NO_COLLECTIONS)
    return verdict(fix, (LimitStep(name) for name in shape.needed_limits if name not in shape.module_names))


class CleanupStep(Enum):
    METHOD = "method"  # the _cleanup_old_entries() method
    COUNTER = "counter"  # self.events_processed = 0 in __init__
    CALL = "call"  # handle() counts events and calls the cleanup


def plan_periodic_cleanup(fix: Fix, shape: Shape) -> Plan:
    if not shape.needed_limits:
        return not_applicable(fix, NO_COLLECTIONS)
    steps = []
    if CLEANUP_METHOD not in shape.methods:
        steps.append(CleanupStep.METHOD)
    if EVENT_COUNTER not in shape.init_attrs:
        steps.append(CleanupStep.COUNTER)
    if not shape.handle_calls_cleanup:
        steps.append(CleanupStep.CALL)
    imports = missing_imports(shape, fix) if shape.has_git_cache else []
    return verdict(fix, steps, imports)


class TeardownStep(Enum):
    DEL = "del"  # __del__ closes the pool


def plan_teardown(fix: Fix, shape: Shape) -> Plan:
    if not shape.has_socketio_client:
        return not_applicable(fix, f"no connection pool to close: {NO_CLIENT}")
    return verdict(fix, [] if shape.del_closes_pool else [TeardownStep.DEL])
