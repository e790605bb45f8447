"""Running the command line on a pseudo-terminal, where colour, live views and progress bars switch on."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent


def spawn_on_terminal(argv: Sequence[str], env_extra: dict | None = None, cwd=None, stdout=None):
    """``python -m fixer ARGV`` with stderr (and stdout, unless given) on a fresh terminal: (process, terminal fd)."""
    primary, secondary = pty.openpty()
    env = {key: value for key, value in os.environ.items() if key not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS")}
    env.update({"TERM": "xterm-256color", "PYTHONPATH": str(ROOT)}, **(env_extra or {}))
    process = subprocess.Popen(
        [sys.executable, "-m", "fixer", *argv],
        stdin=subprocess.DEVNULL,
        stdout=stdout or secondary,
        stderr=secondary,
        env=env,
        cwd=cwd or ROOT,
    )
    os.close(secondary)
    return process, primary


def read_terminal(fd: int, done: Callable[[str], bool], timeout: float = 30) -> str:
    """What the terminal shows until ``done(text)`` or the program exits (EIO) or ``timeout`` passes."""
    text, deadline = "", time.monotonic() + timeout
    while not done(text) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the program exited and closed the terminal
            break
        if not chunk:
            break
        text += chunk.decode("utf-8", "replace")
    return text


def run_on_terminal(argv: Sequence[str], env_extra: dict | None = None, cwd=None, stdout=None):
    """Run to the end on a terminal: (exit code, everything shown)."""
    process, fd = spawn_on_terminal(argv, env_extra, cwd, stdout)
    try:
        text = read_terminal(fd, lambda _: False, timeout=120)
        return process.wait(timeout=30), text
    finally:
        os.close(fd)
