"""Decide, per fix, whether it is pending, present or not applicable, and which steps remain.

Pure standard library: ``check`` runs only this and ``shape``. A fix is made of small
steps that are each done or not, so a partial patch (``--select``, a hand edit) is
completed without duplicating anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Callable

from .shape import CLEANUP_METHOD, EVENT_COUNTER, IMPORT_STEP, POOL_ATTRIBUTE, POOL_CLASS, Shape, pool_is_outdated

PENDING, PRESENT, NOT_APPLICABLE = "pending", "present", "not-applicable"

FIX_NAMES: tuple[str, ...] = ("connection-pool", "singleton", "limits", "periodic-cleanup", "teardown")
REQUIRES: dict[str, tuple[str, ...]] = {"periodic-cleanup": ("limits",), "teardown": ("connection-pool",)}

UPSTREAM_REASON = "fixed upstream (claude-mpm 3.9.4+ ships its own _global_handler and connection pool): nothing to do"
NO_COLLECTIONS = (
    "nothing to bound: __init__ keeps no active_delegations, delegation_requests, pending_prompts or git cache"
)
NO_CLIENT = "the handler builds no Socket.IO client"
STALE_POOL = (
    "the connection pool an older fix-memory-leaks injected loses events and can hang hook processes "
    "at exit: apply replaces it"
)
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
    if POOL_CLASS not in shape.module_names or stale:  # the pool's code is what needs the imports
        steps += ["pool-class", *import_steps(shape, "connection-pool")]
    if POOL_ATTRIBUTE not in shape.init_attrs:
        steps.append("pool-attribute")
    if shape.client_builders or (stale and shape.synced_getters):
        steps.append("use-pool")
    return _verdict("connection-pool", steps, STALE_POOL if stale else "")


def _singleton(shape: Shape) -> Plan:
    steps = import_steps(shape, "singleton")
    if not {"_global_handler", "_handler_lock"} <= shape.module_names:
        steps.append("globals")
    if shape.main_builds_handler:
        steps.append("main")
    return _verdict("singleton", steps)


def _limits(shape: Shape) -> Plan:
    if not shape.needed_limits:
        return Plan("limits", NOT_APPLICABLE, NO_COLLECTIONS)
    return _verdict("limits", (f"constant:{name}" for name in shape.needed_limits if name not in shape.module_names))


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
    return _verdict("periodic-cleanup", steps)


def _teardown(shape: Shape) -> Plan:
    if not shape.has_socketio_client:
        return Plan("teardown", NOT_APPLICABLE, f"no connection pool to close: {NO_CLIENT}")
    return _verdict("teardown", [] if shape.del_closes_pool else ["del"])


PLANNERS: dict[str, Callable[[Shape], Plan]] = {
    "connection-pool": _connection_pool,
    "singleton": _singleton,
    "limits": _limits,
    "periodic-cleanup": _periodic_cleanup,
    "teardown": _teardown,
}


def plan_fixes(shape: Shape) -> dict[str, Plan]:
    """Every fix's verdict, in registry order."""
    if shape.upstream_fixed:
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
