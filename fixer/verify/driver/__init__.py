"""The driver of ``fix-memory-leaks verify``: runs a claude-mpm hook handler the way claude-mpm does, against a
real Socket.IO server, and measures it.

It runs inside the interpreter of the install being verified, because the handler needs that
install's claude_mpm and python-socketio, and so does the server that stands in for claude-mpm's
dashboard. So it imports nothing but the standard library, python-socketio and aiohttp, and stays
valid on Python 3.8, which claude-mpm supports; :mod:`.boot` says how it is started there. The
in-process soak harness (``bench.soak_harness``) and the benchmarks use its server and hook events
too, so every measurement is made the same way. Its modules:

- ``contract``: what verify and the driver agree on (the reply contract, the server conditions, the
  bounds, how the wrapper launches the hook, what to measure);
- ``server``: the dashboards a hook meets (counting, wedged, none), and the namespace's loopback;
- ``events``: the hook events, as Claude Code sends them;
- ``processes``: one hook process, bounded and killed with what it started;
- ``per_process``: run 1, one process per event, as the release's wrapper runs it;
- ``in_process`` and ``long_lived``: run 2, one process calling ``main()`` N times, watched from outside;
- ``cli``: the command line, which prints the figures as one JSON object.
"""

from .boot import driver_command
from .cli import main, verify
from .contract import (
    CONTINUE,
    DASHBOARD_PORT,
    DEFAULT_EVENTS,
    HANG_LIMIT_SECONDS,
    HOOK_ENVIRONMENT,
    PORT_VARIABLES,
    PROGRESS_PREFIX,
    SETTLE_SECONDS,
    WEDGED_EVENTS,
    Condition,
    HandlerNames,
    Launch,
    Reply,
    contract,
    replies_continue,
    wrapper_environment,
    wrapper_variables,
)
from .events import hook_events, project_folders
from .in_process import call_hook, collection_sizes, import_handler, observe_handle, raise_to
from .long_lived import LongLivedRun, run_long_lived
from .per_process import PerProcessRun, run_per_process
from .server import SocketIOServer, WedgedServer

__all__ = [
    "CONTINUE",
    "DASHBOARD_PORT",
    "DEFAULT_EVENTS",
    "HANG_LIMIT_SECONDS",
    "HOOK_ENVIRONMENT",
    "PORT_VARIABLES",
    "PROGRESS_PREFIX",
    "SETTLE_SECONDS",
    "WEDGED_EVENTS",
    "Condition",
    "HandlerNames",
    "Launch",
    "LongLivedRun",
    "PerProcessRun",
    "Reply",
    "SocketIOServer",
    "WedgedServer",
    "call_hook",
    "collection_sizes",
    "contract",
    "driver_command",
    "hook_events",
    "import_handler",
    "main",
    "observe_handle",
    "project_folders",
    "raise_to",
    "replies_continue",
    "run_long_lived",
    "run_per_process",
    "verify",
    "wrapper_environment",
    "wrapper_variables",
]
