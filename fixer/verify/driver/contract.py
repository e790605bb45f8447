"""What verify and the driver agree on: the reply contract, the server conditions, the bounds, the launch.

Both sides read these: verify (in our interpreter) to build the driver's command line and to judge
its JSON, the driver (in the install's) to run the hooks. Standard library only, Python 3.8.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path


class Reply(str, Enum):
    """Claude Code's continue reply, as each release's wrapper and handler write it.

    ``{"action": "continue"}`` in 3.x and 4.x, ``{"continue": true}`` (more keys allowed) in 5.x,
    ``{"async": true, ...}`` from 5.x's fast hook. A release's contract is one of these, or
    several joined by ``|`` (:func:`contract`).
    """

    ACTION = "action"
    CONTINUE = "continue"
    ASYNC = "async"


def contract(*replies: Reply) -> str:
    """The contract of a release that accepts ``replies``, as the driver's command line carries it."""
    return "|".join(reply.value for reply in replies)


CONTINUE = {"action": "continue"}


def replies_continue(output: str, reply: str = Reply.ACTION.value) -> bool:
    """Does the hook's stdout hold the continue reply of the release's contract (``reply``)?

    ``{"action": "continue"}`` exactly (3.x, 4.x), an object whose ``continue`` is true (5.x,
    which may add keys such as ``tool_input``), or one whose ``async`` is true (5.x's fast hook).
    """
    accepted = [Reply(key) for key in reply.split("|")]
    for line in output.splitlines():
        with contextlib.suppress(ValueError):
            answer = json.loads(line)
            if Reply.ACTION in accepted and answer == CONTINUE:
                return True
            if isinstance(answer, dict) and any(
                answer.get(key.value) is True for key in accepted if key != Reply.ACTION
            ):
                return True
    return False


class Condition(str, Enum):
    """The dashboard a per-process run meets: up and counting, absent, or accepting and never answering."""

    SERVER_UP = "server_up"
    NO_SERVER = "no_server"
    WEDGED = "wedged"

    @property
    def words(self) -> str:
        """The condition in a progress line: ``per process, server up``."""
        return self.value.replace("_", " ")


# The environment claude-mpm's hook_wrapper.sh sets for the handler (its port is replaced by the
# server's). A release whose wrapper exports other values has them read from it (fixer.verify.hooks).
HOOK_ENVIRONMENT = {"CLAUDE_MPM_SOCKETIO_PORT": "8765", "CLAUDE_MPM_HOOK_DEBUG": "true"}
# Where releases read their dashboard's port: Socket.IO (3.x, 4.0) and HTTP (4.1.3 and later).
PORT_VARIABLES = ("CLAUDE_MPM_SOCKETIO_PORT", "CLAUDE_MPM_SERVER_PORT")
DASHBOARD_PORT = 8765  # every release's default, hard-coded in some
HANG_LIMIT_SECONDS = 10.0  # a hook process (or a long-lived call, or its exit) still running after this hung
SETTLE_SECONDS = 2.0  # the most a run waits at its end for late events and closing connections
# Small enough that a pre-fix handler whose every hook hangs (killed at the hang limit) is still
# verified in about two minutes: 8 x 10 s per process, plus the no-server and long-lived runs.
DEFAULT_EVENTS = 8
WEDGED_EVENTS = 3  # hooks against a server that never answers: their time is reported, not judged
PROGRESS_PREFIX = "verify-progress "
FAILURE_EXAMPLES = 5


def wrapper_variables(port: int, hook_environment: dict[str, str] | None = None) -> dict[str, str]:
    """The variables the wrapper sets for the hook, its port variables on ``port``: the one definition that
    verify, the soak and the tests lay over their own environment."""
    variables = dict(HOOK_ENVIRONMENT if hook_environment is None else hook_environment)
    variables.update(dict.fromkeys(PORT_VARIABLES, str(port)))
    return variables


def wrapper_environment(port: int, hook_environment: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the wrapper gives the hook, its port variables on ``port`` (the rest, PYTHONPATH
    included, is ours)."""
    return dict(os.environ, **wrapper_variables(port, hook_environment))


@dataclass
class Launch:
    """How the release's wrapper runs its hook for one event, and what it must reply.

    ``command`` is the process to start (``python hook_handler.py``, ``python -m module``, a
    shell hook, an entry point); ``module``/``handler`` say what the long-lived run imports
    (neither: a shell hook, no long-lived run); ``port`` is the dashboard port the hooks use
    (0: a free one, passed in the port variables).
    """

    command: list[str]
    environment: dict[str, str] = field(default_factory=lambda: dict(HOOK_ENVIRONMENT))
    reply: str = Reply.ACTION.value
    module: str | None = None
    handler: str | None = None
    function: str = "main"
    port: int = 0

    @classmethod
    def by_path(cls, python: str, handler: Path) -> Launch:
        """3.x's ``hook_wrapper.sh``: ``python hook_handler.py``."""
        return cls([python, str(handler)], handler=str(handler))

    @classmethod
    def from_json(cls, text: str) -> Launch:
        return cls(**json.loads(text))

    def as_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class HandlerNames:
    """What the long-lived run reads off a handler, named by the fixes (``registry.verify_expectations``).

    The driver imports nothing of ours, so verify hands these over on its command line.
    ``size_limits``: collection -> the constant that limits its size (None: bounded by age only).
    """

    handler_class: str
    pool_attribute: str
    cleanup_interval: str
    size_limits: dict[str, str | None]

    @classmethod
    def from_json(cls, text: str) -> HandlerNames:
        return cls(**json.loads(text))

    def as_json(self) -> dict:
        return asdict(self)
