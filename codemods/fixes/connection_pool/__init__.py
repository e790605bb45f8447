"""connection-pool: one small pool of Socket.IO clients instead of a new client per event.

Its record, steps and planner (standard library only); the transformer is in ``transform``.
"""

from __future__ import annotations

from enum import Enum

from ...reading.features import POOL_ATTRIBUTE, POOL_CLASS, Shape
from ...reading.shape import pool_is_outdated
from ..plan import NO_CLIENT, Plan, missing_imports, not_applicable, upstream_verdict, verdict
from ..record import Fix

NAME = "connection-pool"

STALE_POOL = (
    "the connection pool an older fix-memory-leaks injected loses events and can hang hook processes "
    "at exit: apply replaces it"
)
# claude-mpm 3.9.4-3.9.11 ship a fix of their own that breaks the hook in real use: what this fix repairs
# in it, as ``check`` explains it (confirmed on real installs, one hook process per event).
UPSTREAM_POOL = (
    "claude-mpm's own SocketIOConnectionPool closes its clients only from __del__ of a module-global handler, "
    "at interpreter finalization: over polling queued events and the close never go out (events lost, "
    "connections left open), over websocket the hook hangs; apply replaces it with ours"
)
UPSTREAM_RETRY = "a failed emit is retried through an immediate reconnection, another handshake the hook waits for"


class PoolStep(Enum):
    POOL_CLASS = "pool-class"  # the SocketIOConnectionPool class (replacing an outdated one of ours)
    POOL_ATTRIBUTE = "pool-attribute"  # self.connection_pool = ... in __init__
    USE_POOL = "use-pool"  # the methods that built a socketio.Client take it from the pool
    NO_RETRY = "no-retry"  # claude-mpm 3.9.4-3.9.11: no retry through an immediate reconnection


def pool_is_theirs(shape: Shape) -> bool:
    """claude-mpm 3.9.4-3.9.11's own pool class, not ours: closed only from __del__ at interpreter finalization."""
    return shape.upstream is not None and not FIX.owns(shape, POOL_CLASS)


def plan_connection_pool(fix: Fix, shape: Shape) -> Plan:
    if not shape.has_socketio_client:
        return not_applicable(fix, NO_CLIENT)
    stale = pool_is_outdated(shape.pool_revision)
    steps = []
    imports: list[str] = []
    theirs = pool_is_theirs(shape)
    if POOL_CLASS not in shape.module_names or stale or theirs:  # the pool's code is what needs the imports
        steps.append(PoolStep.POOL_CLASS)
        imports += missing_imports(shape, fix)
    if POOL_ATTRIBUTE not in shape.init_attrs:
        steps.append(PoolStep.POOL_ATTRIBUTE)
    if shape.client_builders or (stale and shape.synced_getters):
        steps.append(PoolStep.USE_POOL)
    if shape.upstream is not None:
        repairs = {
            PoolStep.POOL_CLASS: (theirs, UPSTREAM_POOL),
            PoolStep.NO_RETRY: (shape.upstream.retrying_methods, UPSTREAM_RETRY),
        }
        return upstream_verdict(fix, steps, imports, repairs)
    return verdict(fix, steps, imports, STALE_POOL if stale else "")


FIX = Fix(
    NAME,
    "Add SocketIOConnectionPool (at most max_connections live clients, dead ones dropped); "
    "the handler gets its Socket.IO client from the pool instead of building one per event. "
    "Replaces claude-mpm 3.9.4-3.9.11's own pool in place, and its retry through an immediate reconnection.",
    steps=PoolStep,
    planner=plan_connection_pool,
    transformer=f"{__name__}.transform.ConnectionPoolFix",
    anchors=("builder", "__init__"),
    imports=("sys", "threading", "time", "weakref"),
    verify={"pool_attribute": POOL_ATTRIBUTE},
)
