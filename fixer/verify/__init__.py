"""``fix-memory-leaks verify``: run the user's own hook for real, as its wrapper does, and judge it by the figures.

A compile check says the patch is Python; only running the hook the way claude-mpm runs it
shows that it delivers its events, closes its connections, keeps its collections bounded and
never holds up Claude Code. The layers:

- ``runner``: one verification, as one pass through the parts below;
- ``hooks``: how the install runs its hook (wrapper, environment, reply contract), read from its files;
- ``launcher``: starts the driver in the install's interpreter, isolated (a private network namespace
  where the OS allows one) and bounded;
- ``driver/``: launched there, runs the hooks against dashboard-like servers and prints figures as
  JSON (standard library, python-socketio, aiohttp only);
- ``figures`` and ``verdict``: the driver's JSON as typed runs, and the pure verdict over them;
- ``render``: progress, text and JSON.

It changes nothing on disk.
"""

from .driver.contract import DEFAULT_EVENTS, HOOK_ENVIRONMENT
from .launcher import VerifyError, handler_names
from .render import VerifyReport, progress_display
from .runner import Verification, verify_target
from .verdict import ERROR, FAIL, PASS, Expectation, expected_deliveries, judge

__all__ = [
    "DEFAULT_EVENTS",
    "ERROR",
    "FAIL",
    "HOOK_ENVIRONMENT",
    "PASS",
    "Expectation",
    "Verification",
    "VerifyError",
    "VerifyReport",
    "expected_deliveries",
    "handler_names",
    "judge",
    "progress_display",
    "verify_target",
]
