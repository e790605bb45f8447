"""``fix-memory-leaks verify``: run the user's own hook for real, as its wrapper does, and judge it by the figures.

A compile check says the patch is Python; only running the hook the way claude-mpm runs it
shows that it delivers its events, closes its connections, keeps its collections bounded and
never holds up Claude Code. The layers:

- ``hooks``: how the install runs its hook (wrapper, environment, reply contract), read from its files;
- ``driver``: one file, launched in the install's interpreter, that runs the hooks against a
  dashboard-like server and prints figures as JSON (standard library, python-socketio, aiohttp only);
- ``runner``: starts the driver, isolated (a private network namespace where the OS allows one);
- ``figures`` and ``verdict``: the driver's JSON as typed runs, and the pure verdict over them;
- ``render``: progress, text and JSON.

It changes nothing on disk.
"""

from .driver import DEFAULT_EVENTS, HOOK_ENVIRONMENT
from .hooks import Target
from .render import VerifyReport, progress_display
from .runner import Verification, VerifyError, verify_file, verify_installed, verify_target
from .verdict import ERROR, FAIL, PASS, Expectation, expected_deliveries, judge

__all__ = [
    "DEFAULT_EVENTS",
    "ERROR",
    "FAIL",
    "HOOK_ENVIRONMENT",
    "PASS",
    "Expectation",
    "Target",
    "Verification",
    "VerifyError",
    "VerifyReport",
    "expected_deliveries",
    "judge",
    "progress_display",
    "verify_file",
    "verify_installed",
    "verify_target",
]
