"""Decide, per fix, whether it is pending, present or not applicable, and which steps remain.

Pure standard library: ``check`` runs only this and ``shape``. A fix is made of small
steps that are each done or not, so a partial patch (``--select``, a hand edit) is
completed without duplicating anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Callable

from .shape import CLEANUP_METHOD, EVENT_COUNTER, IMPORT_STEP, POOL_ATTRIBUTE, POOL_CLASS, Shape, pool_is_outdated

PENDING, PRESENT, NOT_APPLICABLE = "pending", "present", "not-applicable"

FIX_NAMES: tuple[str, ...] = ("connection-pool", "singleton", "limits", "periodic-cleanup", "teardown")
REQUIRES: dict[str, tuple[str, ...]] = {"periodic-cleanup": ("limits",), "teardown": ("connection-pool",)}

UPSTREAM_REASON = (
    "fixed upstream (claude-mpm 4.x+ keeps its own _global_handler, and its connection pool outside this file): "
    "nothing to do"
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
# The modules the injected code of each fix uses.
IMPORTS: dict[str, tuple[str, ...]] = {
    "connection-pool": ("sys", "threading", "time", "weakref"),
    "singleton": ("threading",),
    "periodic-cleanup": ("time",),
}


@dataclass(frozen=True)
class Plan:
    """One fix's verdict on one file."""

    name: str
    status: str
    reason: str = ""
    steps: frozenset[str] = field(default_factory=frozenset)


# Where each fix acts, as a line of the handler (for annotations): the first of these that exists.
ANCHORS: dict[str, tuple[str, ...]] = {
    "connection-pool": ("builder", "__init__"),
    "singleton": ("main",),
    "limits": ("__init__",),
    "periodic-cleanup": ("handle",),
    "teardown": ("__del__", "class"),
}


def anchor_line(shape: Shape, fix: str) -> int:
    """The handler line a fix is about: what ``check --format github`` points at."""
    return next((shape.lines[key] for key in ANCHORS[fix] if key in shape.lines), shape.lines["class"])


def _verdict(name: str, steps: Iterable[str], reason: str = "") -> Plan:
    steps = frozenset(steps)
    return Plan(name, PENDING if steps else PRESENT, reason if steps else "", steps)


def import_steps(shape: Shape, fix: str) -> list[str]:
    """``import:NAME`` for each module the fix's code uses that the file does not bind."""
    return [IMPORT_STEP + name for name in IMPORTS[fix] if name not in shape.module_names]


def _connection_pool(shape: Shape) -> Plan:
    if not shape.has_socketio_client:
        return Plan("connection-pool", NOT_APPLICABLE, NO_CLIENT)
    stale = pool_is_outdated(shape.pool_revision)
    steps = []
    theirs = shape.upstream is not None and shape.upstream.pool_is_theirs
    if POOL_CLASS not in shape.module_names or stale or theirs:  # the pool's code is what needs the imports
        steps += ["pool-class", *import_steps(shape, "connection-pool")]
    if POOL_ATTRIBUTE not in shape.init_attrs:
        steps.append("pool-attribute")
    if shape.client_builders or (stale and shape.synced_getters):
        steps.append("use-pool")
    if shape.upstream is not None:
        return _upstream_verdict(
            "connection-pool",
            steps,
            {
                "pool-class": (shape.upstream.pool_is_theirs, UPSTREAM_POOL),
                "no-retry": (shape.upstream.retrying_methods, UPSTREAM_RETRY),
            },
        )
    return _verdict("connection-pool", steps, STALE_POOL if stale else "")


def _upstream_verdict(name: str, steps: list[str], repairs: Mapping[str, tuple[object, str]]) -> Plan:
    """A fix's verdict on claude-mpm's own 3.9.4-3.9.11 fix: each repair still needed adds its step and its reason."""
    needed = {step: reason for step, (wanted, reason) in repairs.items() if wanted}
    reasons = "; ".join(dict.fromkeys(needed.values()))
    return _verdict(name, [*steps, *(step for step in needed if step not in steps)], reasons)


def _singleton(shape: Shape) -> Plan:
    steps = import_steps(shape, "singleton")
    if not {"_global_handler", "_handler_lock"} <= shape.module_names:
        steps.append("globals")
    if shape.main_builds_handler:
        steps.append("main")
    upstream = shape.upstream
    if upstream is not None:
        if upstream.stdin_waits:
            steps += [IMPORT_STEP + name for name in STDIN_HELPER_IMPORTS if name not in shape.module_names]
        repairs = {
            "main-returns": (upstream.exit_replies, UPSTREAM_EXIT),
            "alarm-once": (upstream.alarm_replies, UPSTREAM_ALARM),
            "stdin-wait": (upstream.stdin_waits, UPSTREAM_STDIN),
        }
        return _upstream_verdict("singleton", steps, repairs)
    return _verdict("singleton", steps)


def _limits(shape: Shape) -> Plan:
    if not shape.needed_limits:
        return Plan("limits", NOT_APPLICABLE, NO_COLLECTIONS)
    steps = [f"constant:{name}" for name in shape.needed_limits if name not in shape.module_names]
    if shape.upstream is not None:
        repairs = {f"attribute:{name}": (True, UPSTREAM_LIMITS) for name in shape.upstream.literal_limits}
        return _upstream_verdict("limits", steps, repairs)
    return _verdict("limits", steps)


def _periodic_cleanup(shape: Shape) -> Plan:
    if not shape.needed_limits:
        return Plan("periodic-cleanup", NOT_APPLICABLE, NO_COLLECTIONS)
    steps = []
    if CLEANUP_METHOD not in shape.methods:
        steps.append("method")
    if EVENT_COUNTER not in shape.init_attrs:
        steps.append("counter")
    if not shape.handle_calls_cleanup:
        steps.append("call")
    if shape.has_git_cache:
        steps.extend(import_steps(shape, "periodic-cleanup"))
    if shape.upstream is not None:
        return _upstream_verdict(
            "periodic-cleanup", steps, {"method": (shape.upstream.cleanup_is_theirs, UPSTREAM_CLEANUP)}
        )
    return _verdict("periodic-cleanup", steps)


def _teardown(shape: Shape) -> Plan:
    if not shape.has_socketio_client:
        return Plan("teardown", NOT_APPLICABLE, f"no connection pool to close: {NO_CLIENT}")
    steps = [] if shape.del_closes_pool else ["del"]
    if shape.upstream is not None:
        return _upstream_verdict("teardown", steps, {"del": (shape.upstream.del_is_theirs, UPSTREAM_DEL)})
    return _verdict("teardown", steps)


PLANNERS: dict[str, Callable[[Shape], Plan]] = {
    "connection-pool": _connection_pool,
    "singleton": _singleton,
    "limits": _limits,
    "periodic-cleanup": _periodic_cleanup,
    "teardown": _teardown,
}


def plan_fixes(shape: Shape) -> dict[str, Plan]:
    """Every fix's verdict, in registry order."""
    if shape.upstream_fixed and shape.upstream is None:  # 4.x and later; 3.9.4-3.9.11 are repaired
        return {name: Plan(name, NOT_APPLICABLE, UPSTREAM_REASON) for name in FIX_NAMES}
    return {name: PLANNERS[name](shape) for name in FIX_NAMES}


class UnknownFix(ValueError):
    """A name given to --select or the config's ``fixes`` that is not a fix."""


def resolve_selection(names: Iterable[str]) -> tuple[tuple[str, ...], list[str]]:
    """Expand a selection with what each fix needs; return it in registry order and the notes to show."""
    wanted = []
    for name in names:
        if name not in FIX_NAMES:
            raise UnknownFix(f"unknown fix {name!r} (the fixes are: {', '.join(FIX_NAMES)})")
        wanted.append(name)
    notes = []
    for name in list(wanted):
        for needed in REQUIRES.get(name, ()):
            if needed not in wanted:
                wanted.append(needed)
                notes.append(f"{name} needs {needed}: selected it too")
    return tuple(name for name in FIX_NAMES if name in wanted), notes
