"""singleton: one handler per process, created under a lock, instead of a new one per call.

Its record, steps and planner (standard library only); the transformer is in ``transform``.
"""

from __future__ import annotations

from enum import Enum

from ...reading.features import GLOBAL_HANDLER, Shape
from ..plan import Plan, missing_imports, upstream_verdict, verdict
from ..record import Fix

NAME = "singleton"

UPSTREAM_EXIT = (
    "main() replies again after handle() and at exit, then calls sys.exit(0): up to three replies per hook, "
    "and a long-lived process dies at its first main() call"
)
UPSTREAM_ALARM = "the timeout handler replies, then the except block it lands in replies again"
UPSTREAM_STDIN = "select() on sys.stdin fails for a stdin with no file descriptor: the event is dropped"
# The modules the stdin helper uses (claude-mpm 3.9.9-3.9.11 only).
STDIN_HELPER_IMPORTS = ("select", "sys")


class SingletonStep(Enum):
    GLOBALS = "globals"  # module globals _global_handler and _handler_lock
    MAIN = "main"  # main() reuses the one handler
    MAIN_RETURNS = "main-returns"  # claude-mpm 3.9.9+: main() neither replies again nor exits the process
    ALARM_ONCE = "alarm-once"  # claude-mpm 3.9.9+: the timeout handler's reply is the only one
    STDIN_WAIT = "stdin-wait"  # claude-mpm 3.9.9+: stdin waited for without select() on it


def plan_singleton(fix: Fix, shape: Shape) -> Plan:
    steps = []
    if not {GLOBAL_HANDLER, "_handler_lock"} <= shape.module_names:
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
        return upstream_verdict(fix, steps, imports, repairs)
    return verdict(fix, steps, imports)


FIX = Fix(
    NAME,
    "Add module globals _global_handler and _handler_lock; main() creates the handler once, "
    "under the lock, and reuses it. In claude-mpm 3.9.9-3.9.11: one reply per hook, and a main() that returns.",
    steps=SingletonStep,
    planner=plan_singleton,
    transformer=f"{__name__}.transform.SingletonFix",
    anchors=("main",),
    imports=("threading",),
)
