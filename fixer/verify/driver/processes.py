"""One hook process, as Claude Code starts it: the event on stdin, killed with all it started if it hangs."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time

from .contract import FAILURE_EXAMPLES
from .events import claude_code_json

ERROR_LINE = re.compile(r"error|exception", re.IGNORECASE)


def run_hook(
    command: list[str], event: dict, environment: dict[str, str], hang_limit: float
) -> tuple[float, int | None, str, str]:
    """(seconds, exit code or None when it hung and was killed, stdout, stderr) of one hook process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=event["cwd"],
        env=environment,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(claude_code_json(event), timeout=hang_limit)
    except subprocess.TimeoutExpired:
        kill_group(process)
        stdout, stderr = process.communicate()
        return hang_limit, None, stdout, stderr
    except BaseException:  # interrupted (Ctrl-C, verify stopping): the hook goes first
        kill_group(process)
        process.wait()
        raise
    return time.perf_counter() - started, process.returncode, stdout, stderr


def collect_errors(collected: list[str], stderr: str) -> None:
    """Keep the first few distinct lines where a hook reports an error it then swallowed (4.1.3-4.1.8 do)."""
    for line in stderr.splitlines():
        line = line.strip()[:200]
        if ERROR_LINE.search(line) and line not in collected and len(collected) < FAILURE_EXAMPLES:
            collected.append(line)


def kill_group(process: subprocess.Popen) -> None:
    """Kill the process and whatever it started (a git lookup, say), so no pipe stays open."""
    with contextlib.suppress(ProcessLookupError):
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""
