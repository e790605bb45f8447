"""Decide, per fix, whether it is pending, present or not applicable, and which steps remain.

Pure standard library: ``check`` runs only this and ``shape``. A fix is made of small
steps that are each done or not, so a partial patch (``--select``, a hand edit) is
completed without duplicating anything. Each fix's steps are an ``Enum`` here, next to
the planner that chooses them; the fix's record (``registry.FIXES``) names both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, TypeVar

from ..reading.shape import (
    CACHE_AGE_LIMIT,
    CLEANUP_INTERVAL,
    CLEANUP_METHOD,
    EVENT_COUNTER,
    POOL_ATTRIBUTE,
    POOL_CLASS,
    Shape,
    pool_is_outdated,
)
from ..status import FixStatus

if TYPE_CHECKING:
    from .registry import Fix

Step = TypeVar("Step", bound=Enum)

# Said of every fix on 4.x and later, whether or not the file's note says that its hook breaks.
UPSTREAM_REASON = (
    "claude-mpm's own code (4.x+ keeps its own _global_handler, and its connection pool outside this file): "
    "none of these fixes applies"
)
NO_COLLECTIONS = (
    "nothing to bound: __init__ keeps no active_delegations, delegation_requests, pending_prompts or git cache"
)
NO_CLIENT = "the handler builds no Socket.IO client"
STALE_POOL = (
    "the connection pool an older fix-memory-leaks injected loses events and can hang hook processes "
    "at exit: apply replaces it"
)
# claude-mpm 3.9.4-3.9.11 ship a fix of their own that breaks the hook in real use: what each of our
# fixes repairs in it, as ``check`` explains it (confirmed on real installs, one hook process per event).
UPSTREAM_POOL = (
    "claude-mpm's own SocketIOConnectionPool closes its clients only from __del__ of a module-global handler, "
    "at interpreter finalization: over polling queued events and the close never go out (events lost, "
    "connections left open), over websocket the hook hangs; apply replaces it with ours"
)
UPSTREAM_RETRY = "a failed emit is retried through an immediate reconnection, another handshake the hook waits for"
UPSTREAM_EXIT = (
    "main() replies again after handle() and at exit, then calls sys.exit(0): up to three replies per hook, "
    "and a long-lived process dies at its first main() call"
)
UPSTREAM_ALARM = "the timeout handler replies, then the except block it lands in replies again"
UPSTREAM_STDIN = "select() on sys.stdin fails for a stdin with no file descriptor: the event is dropped"
UPSTREAM_LIMITS = "the limits are numbers written into __init__, not the configured ones"
UPSTREAM_CLEANUP = "claude-mpm's own _cleanup_old_entries() keeps the keys that sort last, not the newest entries"
UPSTREAM_DEL = (
    "claude-mpm's own __del__ closes the pool's clients during interpreter finalization, where a disconnect "
    "blocks or drops what is queued"
)
# The modules the singleton fix's stdin helper uses (claude-mpm 3.9.9-3.9.11 only).
STDIN_HELPER_IMPORTS = ("select", "sys")


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
    NO_RETRY = "no-retry"  # claude-mpm 3.9.4-3.9.11: no retry through an immediate reconnection


def plan_connection_pool(fix: Fix, shape: Shape) -> Plan:
    if not shape.has_socketio_client:
        return not_applicable(fix, NO_CLIENT)
    stale = pool_is_outdated(shape.pool_revision)
    steps = []
    imports: list[str] = []
    theirs = shape.upstream is not None and shape.upstream.pool_is_theirs
    if POOL_CLASS not in shape.module_names or stale or theirs:  # the pool's code is what needs the imports
        steps.append(PoolStep.POOL_CLASS)
        imports += missing_imports(shape, fix)
    if POOL_ATTRIBUTE not in shape.init_attrs:
        steps.append(PoolStep.POOL_ATTRIBUTE)
    if shape.client_builders or (stale and shape.synced_getters):
        steps.append(PoolStep.USE_POOL)
    if shape.upstream is not None:
        repairs = {
            PoolStep.POOL_CLASS: (shape.upstream.pool_is_theirs, UPSTREAM_POOL),
            PoolStep.NO_RETRY: (shape.upstream.retrying_methods, UPSTREAM_RETRY),
        }
        return _upstream_verdict(fix, steps, imports, repairs)
    return verdict(fix, steps, imports, STALE_POOL if stale else "")


def _upstream_verdict(
    fix: Fix, steps: list[Step], imports: list[str], repairs: Mapping[Step, tuple[object, str]]
) -> Plan:
    """A fix's verdict on claude-mpm's own 3.9.4-3.9.11 fix: each repair still needed adds its step and its reason."""
    needed = {step: reason for step, (wanted, reason) in repairs.items() if wanted}
    reasons = "; ".join(dict.fromkeys(needed.values()))
    return verdict(fix, [*steps, *(step for step in needed if step not in steps)], imports, reasons)


class SingletonStep(Enum):
    GLOBALS = "globals"  # module globals _global_handler and _handler_lock
    MAIN = "main"  # main() reuses the one handler
    MAIN_RETURNS = "main-returns"  # claude-mpm 3.9.9+: main() neither replies again nor exits the process
    ALARM_ONCE = "alarm-once"  # claude-mpm 3.9.9+: the timeout handler's reply is the only one
    STDIN_WAIT = "stdin-wait"  # claude-mpm 3.9.9+: stdin waited for without select() on it


def plan_singleton(fix: Fix, shape: Shape) -> Plan:
    steps = []
    if not {"_global_handler", "_handler_lock"} <= shape.module_names:
        steps.append(SingletonStep.GLOBALS)
    if shape.main_builds_handler:
        steps.append(SingletonStep.MAIN)
    imports = missing_imports(shape, fix)
    upstream = shape.upstream
    if upstream is not None:
        if upstream.stdin_waits:
            imports += [name for name in STDIN_HELPER_IMPORTS if name not in shape.module_names]
        repairs = {
            SingletonStep.MAIN_RETURNS: (upstream.exit_replies, UPSTREAM_EXIT),
            SingletonStep.ALARM_ONCE: (upstream.alarm_replies, UPSTREAM_ALARM),
            SingletonStep.STDIN_WAIT: (upstream.stdin_waits, UPSTREAM_STDIN),
        }
        return _upstream_verdict(fix, steps, imports, repairs)
    return verdict(fix, steps, imports)


class LimitStep(Enum):
    """One limit constant to add; the members' order is the order they are written in."""

    MAX_DELEGATION_TRACKING = "MAX_DELEGATION_TRACKING"
    MAX_PROMPT_TRACKING = "MAX_PROMPT_TRACKING"
    MAX_CACHE_AGE_SECONDS = CACHE_AGE_LIMIT
    CLEANUP_INTERVAL_EVENTS = CLEANUP_INTERVAL
    # claude-mpm 3.9.4-3.9.11: its limit attributes, numbers in __init__, read the constants (not a constant itself)
    CONFIGURED_ATTRIBUTES = "configured-attributes"


def plan_limits(fix: Fix, shape: Shape) -> Plan:
    if not shape.needed_limits:
        return not_applicable(fix, NO_COLLECTIONS)
    steps = [LimitStep(name) for name in shape.needed_limits if name not in shape.module_names]
    if shape.upstream is not None:
        repairs = {LimitStep.CONFIGURED_ATTRIBUTES: (shape.upstream.literal_limits, UPSTREAM_LIMITS)}
        return _upstream_verdict(fix, steps, [], repairs)
    return verdict(fix, steps)


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
    if shape.upstream is not None:
        repairs = {CleanupStep.METHOD: (shape.upstream.cleanup_is_theirs, UPSTREAM_CLEANUP)}
        return _upstream_verdict(fix, steps, imports, repairs)
    return verdict(fix, steps, imports)


class TeardownStep(Enum):
    DEL = "del"  # __del__ closes the pool


def plan_teardown(fix: Fix, shape: Shape) -> Plan:
    if not shape.has_socketio_client:
        return not_applicable(fix, f"no connection pool to close: {NO_CLIENT}")
    steps = [] if shape.del_closes_pool else [TeardownStep.DEL]
    if shape.upstream is not None:
        return _upstream_verdict(fix, steps, [], {TeardownStep.DEL: (shape.upstream.del_is_theirs, UPSTREAM_DEL)})
    return verdict(fix, steps)
