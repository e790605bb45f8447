"""periodic-cleanup: trim the tracked collections every CLEANUP_INTERVAL_EVENTS events.

Its record, steps and planner (standard library only); the transformer is in ``transform``.
"""

from __future__ import annotations

from enum import Enum

from ...reading.features import CLEANUP_METHOD, EVENT_COUNTER, GIT_CACHE, TRACKED_COLLECTIONS, Shape, method_key
from .. import limits
from ..plan import NO_COLLECTIONS, Plan, missing_imports, not_applicable, upstream_verdict, verdict
from ..record import Fix

NAME = "periodic-cleanup"

UPSTREAM_CLEANUP = "claude-mpm's own _cleanup_old_entries() keeps the keys that sort last, not the newest entries"


class CleanupStep(Enum):
    METHOD = "method"  # the _cleanup_old_entries() method
    COUNTER = "counter"  # self.events_processed = 0 in __init__
    CALL = "call"  # handle() counts events and calls the cleanup


def cleanup_is_theirs(shape: Shape) -> bool:
    """claude-mpm 3.9.4-3.9.11's own cleanup (it trims by sorted key, not by age of insertion), not ours."""
    return (
        shape.upstream is not None
        and CLEANUP_METHOD in shape.methods
        and not FIX.owns(shape, method_key(CLEANUP_METHOD))
    )


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
        repairs = {CleanupStep.METHOD: (cleanup_is_theirs(shape), UPSTREAM_CLEANUP)}
        return upstream_verdict(fix, steps, imports, repairs)
    return verdict(fix, steps, imports)


FIX = Fix(
    NAME,
    "Add _cleanup_old_entries() (trims each tracked collection to its limit, oldest first; expires "
    "git-branch cache entries); handle() counts events and calls it every CLEANUP_INTERVAL_EVENTS. "
    "Replaces claude-mpm 3.9.4-3.9.11's own, which keeps the keys that sort last.",
    steps=CleanupStep,
    planner=plan_periodic_cleanup,
    transformer=f"{__name__}.transform.PeriodicCleanupFix",
    anchors=("handle",),
    requires=(limits.NAME,),
    imports=("time",),
    # Each collection the cleanup trims, with the limit it is trimmed to (None: the cache expires by age).
    verify={"size_limits": {**TRACKED_COLLECTIONS, GIT_CACHE[0]: None}},
)
