"""teardown: ``__del__`` closes the connection pool, even when ``__init__`` failed half-way.

Its record, steps and planner (standard library only); the transformer is in ``transform``.
"""

from __future__ import annotations

from enum import Enum

from ...reading.features import Shape, method_key
from .. import connection_pool
from ..plan import NO_CLIENT, Plan, not_applicable, upstream_verdict, verdict
from ..record import Fix

NAME = "teardown"

UPSTREAM_DEL = (
    "claude-mpm's own __del__ closes the pool's clients during interpreter finalization, where a disconnect "
    "blocks or drops what is queued"
)


class TeardownStep(Enum):
    DEL = "del"  # __del__ closes the pool


def del_is_theirs(shape: Shape) -> bool:
    """claude-mpm 3.9.4-3.9.11's own ``__del__`` (it closes the clients during finalization), not ours."""
    return shape.upstream is not None and "__del__" in shape.methods and not FIX.owns(shape, method_key("__del__"))


def plan_teardown(fix: Fix, shape: Shape) -> Plan:
    if not shape.has_socketio_client:
        return not_applicable(fix, f"no connection pool to close: {NO_CLIENT}")
    steps = [] if shape.del_closes_pool else [TeardownStep.DEL]
    if shape.upstream is not None:
        return upstream_verdict(fix, steps, [], {TeardownStep.DEL: (del_is_theirs(shape), UPSTREAM_DEL)})
    return verdict(fix, steps)


FIX = Fix(
    NAME,
    "__del__ closes the connection pool (close_all()); safe when __init__ failed half-way, "
    "and never blocks during interpreter finalization.",
    steps=TeardownStep,
    planner=plan_teardown,
    transformer=f"{__name__}.transform.TeardownFix",
    anchors=("__del__", "class"),
    requires=(connection_pool.NAME,),
)
