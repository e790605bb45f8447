"""The environment claude-mpm's ``hook_wrapper.sh`` gives the hook handler: how every run of a handler here
(``verify``, the soak, the tests) sets it up, so that none of them judges a handler in conditions users never have.

The 3.x wrapper exports ``CLAUDE_MPM_HOOK_DEBUG=true`` (the handler then logs to stderr) and the
dashboard's port. Standard library only, nothing imported: the verify driver may copy it.
"""

from __future__ import annotations

SOCKETIO_PORT = "CLAUDE_MPM_SOCKETIO_PORT"
HOOK_DEBUG = "CLAUDE_MPM_HOOK_DEBUG"
WRAPPER_HOOK_DEBUG = "true"  # what hook_wrapper.sh sets: real use


def wrapper_variables(port: int) -> dict[str, str]:
    """The variables the wrapper sets for a dashboard on ``port`` (to be laid over the caller's environment)."""
    return {SOCKETIO_PORT: str(port), HOOK_DEBUG: WRAPPER_HOOK_DEBUG}
