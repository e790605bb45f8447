"""limits: module constants that bound the handler's tracked collections.

Its record, steps and planner (standard library only); the transformer is in ``transform``.
"""

from __future__ import annotations

from enum import Enum

from ...reading.features import CACHE_AGE_LIMIT, CLEANUP_INTERVAL, Shape
from ..plan import NO_COLLECTIONS, Plan, not_applicable, upstream_verdict, verdict
from ..record import Fix

NAME = "limits"

UPSTREAM_LIMITS = "the limits are numbers written into __init__, not the configured ones"


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
        return upstream_verdict(fix, steps, [], repairs)
    return verdict(fix, steps)


FIX = Fix(
    NAME,
    "Add MAX_DELEGATION_TRACKING, MAX_PROMPT_TRACKING, MAX_CACHE_AGE_SECONDS and "
    "CLEANUP_INTERVAL_EVENTS (values from the config), only those this layout's collections need; "
    "claude-mpm 3.9.4-3.9.11's limit attributes read them.",
    steps=LimitStep,
    planner=plan_limits,
    transformer=f"{__name__}.transform.LimitsFix",
    anchors=("__init__",),
    verify={"cleanup_interval": CLEANUP_INTERVAL},
)
