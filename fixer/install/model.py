"""What an installed claude-mpm looks like, defined once: the names of its hook's files, module and entry point,
and a :class:`Target`, one hook handler and how Claude Code runs it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

HANDLER_PARTS = ("hooks", "claude_hooks", "hook_handler.py")  # under the claude_mpm package folder
HOOKS_FOLDER = Path(*HANDLER_PARTS[:2])
HANDLER_MODULE = "claude_mpm.hooks.claude_hooks.hook_handler"
WRAPPER = "hook_wrapper.sh"  # beside hook_handler.py, 3.x to 4.x
ENTRY_POINT = "claude-hook"  # 5.x+: the console script, registered by bare name when it is on PATH


class RunMode(str, Enum):
    """How the registered command starts the handler: it decides which hook_handler.py runs."""

    SCRIPT = "script"  # python <wrapper's folder>/hook_handler.py: the file beside the wrapper
    MODULE = "module"  # python -m claude_mpm.hooks.claude_hooks.hook_handler: the one its python imports


@dataclass(frozen=True)
class Target:
    """One hook handler to work on, and how Claude Code runs it.

    ``handler`` is None only when it could not be located (then ``error`` says why). ``python`` is the
    interpreter the registered command runs the handler with, ``pythonpath`` what the wrapper puts in
    front of PYTHONPATH, ``command`` the command string as registered (None for targets not found in
    Claude Code's settings), ``origin`` where the target came from, in words.
    """

    handler: Path | None
    python: str | None
    origin: str
    command: str | None = None
    error: str | None = None
    run_mode: RunMode = RunMode.SCRIPT
    pythonpath: tuple[str, ...] = ()
    wrapper: Path | None = None

    @property
    def label(self) -> str:
        """What to call the target in a message: its handler, else its command."""
        return str(self.handler or self.command or self.origin)
