"""Run claude-mpm's own ``scripts/fix_memory_leaks.py`` the way its users did (issues 10 and 18).

The script itself is not part of this project: it is read from ``../shared/upstream/`` (MIT, see the
README there), copied into a temporary claude-mpm checkout laid out as it expects and run from there:
``ROOT/scripts/fix_memory_leaks.py`` and ``ROOT/src/claude_mpm/hooks/claude_hooks/hook_handler.py``. It
leaves the damaged handler, the pristine ``hook_handler.py.backup``, ``ROOT/.claude-mpm/memory_config.yaml``
and ``ROOT/scripts/monitor_memory.sh``. Without ``../shared`` the tests that need it are skipped, and
fail instead when ``CI`` is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM_SCRIPT = ROOT.parent / "shared" / "upstream" / "fix_memory_leaks.py"
SOURCE_TAIL = Path("src", "claude_mpm", "hooks", "claude_hooks", "hook_handler.py")
SCRIPT_CONFIG = Path(".claude-mpm", "memory_config.yaml")
MONITOR_SCRIPT = Path("scripts", "monitor_memory.sh")


def upstream_script() -> Path:
    """The real script, or skip (fail in CI) when ``../shared`` is not there."""
    if UPSTREAM_SCRIPT.is_file():
        return UPSTREAM_SCRIPT
    message = f"claude-mpm's fix_memory_leaks.py not found at {UPSTREAM_SCRIPT}"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI needs it")
    pytest.skip(message)


@dataclass(frozen=True)
class ScriptRun:
    """What one run of the script left in a checkout."""

    root: Path
    output: str  # what it printed

    @property
    def handler(self) -> Path:
        return self.root / SOURCE_TAIL

    @property
    def backup(self) -> Path:
        return self.handler.with_name(self.handler.name + ".backup")

    @property
    def config(self) -> Path:
        return self.root / SCRIPT_CONFIG


def checkout(root: Path, handler_source: bytes) -> Path:
    """A claude-mpm source checkout under ``root`` holding ``handler_source``; returns the handler."""
    handler = root / SOURCE_TAIL
    handler.parent.mkdir(parents=True, exist_ok=True)
    handler.write_bytes(handler_source)
    return handler


def run_script(root: Path, *python_options: str) -> ScriptRun:
    """Run the real script in the checkout at ``root`` (a copy of it in ``root/scripts``, run from ``root``);
    ``-S`` runs it as a Python without PyYAML would (it then writes its config as JSON)."""
    script = root / "scripts" / "fix_memory_leaks.py"
    script.parent.mkdir(exist_ok=True)
    shutil.copyfile(upstream_script(), script)
    completed = subprocess.run(
        [sys.executable, *python_options, str(script.relative_to(root))],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return ScriptRun(root, completed.stdout)


def damaged_checkout(root: Path, handler_source: bytes) -> ScriptRun:
    """A checkout of this handler that the script has been run in."""
    checkout(root, handler_source)
    return run_script(root)
