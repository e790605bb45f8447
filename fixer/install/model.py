"""What an installed claude-mpm looks like: the names of its hook's files, module and entry point, defined once."""

from __future__ import annotations

from pathlib import Path

HANDLER_PARTS = ("hooks", "claude_hooks", "hook_handler.py")  # under the claude_mpm package folder
HOOKS_FOLDER = Path(*HANDLER_PARTS[:2])
HANDLER_MODULE = "claude_mpm.hooks.claude_hooks.hook_handler"
WRAPPER = "hook_wrapper.sh"  # beside hook_handler.py, 3.x to 4.x
ENTRY_POINT = "claude-hook"  # 5.x+: the console script, registered by bare name when it is on PATH
