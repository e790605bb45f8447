"""Run a real install's hook as Claude Code does (its ``hook_wrapper.sh``, one process per event) in a private
network namespace, and count what a dashboard on the hard-coded port 8765 receives: Socket.IO ``claude_event``s
and HTTP posts to ``/api/events``.

``delivery(python, events)`` runs this module inside ``unshare -rnm`` (user, network and mount namespaces: the
hooks reach only the server started here, and their logs go to a private /tmp) and returns its figures. It is how
the deploy tests check what a ``check`` note claims about a release.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fixer.verify.driver.server import HTTP, SOCKETIO, SocketIOServer

PORT = 8765  # claude-mpm's wrappers and HTTP clients hard-code it
ROOT = Path(__file__).resolve().parent.parent
EVENTS = ("UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop")
HOOK_LIMIT = 20.0  # seconds a hook process may run before it counts as hung (and is killed)


def isolation_available() -> bool:
    """Can this user make user + network + mount namespaces (``unshare -rnm``)?"""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(["unshare", "-rnm", "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


def delivery(python: Path, events: int, python_path: str = "") -> dict:
    """What the dashboard receives from ``events`` hook events run through the install's wrapper (with
    ``python_path`` as the hooks' PYTHONPATH, e.g. a folder holding websocket-client)."""
    command = ["unshare", "-rnm", sys.executable, "-m", "tests.hook_delivery", str(python), str(events), python_path]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=events * HOOK_LIMIT + 60)
    if result.returncode != 0:
        raise RuntimeError(f"hook_delivery failed: {result.stderr.strip()[-800:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _hook_environment(python: Path, bin_folder: Path, python_path: str) -> dict[str, str]:
    """What the wrapper sees under Claude Code: the install's venv, and a ``claude`` on PATH (4.1.10+ ask it for
    its version and skip the hook without one)."""
    claude = bin_folder / "claude"
    claude.write_text("#!/bin/sh\necho '1.0.100 (Claude Code)'\n")
    claude.chmod(0o755)
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("CLAUDE_MPM", "PYTHON"))}
    environment.update(VIRTUAL_ENV=str(python.parent.parent), PATH=f"{bin_folder}:{os.environ.get('PATH', '')}")
    if python_path:
        environment["PYTHONPATH"] = python_path
    return environment


def _private_scratch(*needed: Path) -> Path:
    """A folder for the hooks' HOME, project and logs: a tmpfs over /tmp (the wrappers log into /tmp), unless
    something the run needs lives under /tmp (a checkout or cache there, as in CI), which the tmpfs would hide;
    then a fresh folder of its own under /tmp."""
    if not any(Path("/tmp") in path.resolve().parents for path in needed):
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/tmp"], check=True)
        return Path("/tmp")
    scratch = Path(tempfile.mkdtemp(prefix="hook-delivery-"))
    atexit.register(shutil.rmtree, scratch, True)  # this process is the run: gone with it
    return scratch


def _run(python: Path, events: int, python_path: str) -> dict:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    wrapper = next(python.parent.parent.glob("lib/python*/site-packages/claude_mpm/hooks/claude_hooks/hook_wrapper.sh"))
    needed = [
        python.parent.parent,
        ROOT,
        Path(sys.prefix),
        *(Path(path) for path in python_path.split(os.pathsep) if path),
    ]
    scratch = _private_scratch(*needed)
    environment = _hook_environment(python, scratch, python_path)
    project = scratch / "project"  # the hooks write .claude-mpm/ into the project they run in
    project.mkdir()
    environment["HOME"] = str(scratch)
    replies, seconds = [], []
    with SocketIOServer(PORT) as dashboard:  # the dashboard verify stands up, on the hard-coded port
        for index in range(events):
            event = {
                "hook_event_name": EVENTS[index % len(EVENTS)],
                "session_id": f"session-{index // len(EVENTS)}",
                "cwd": str(project),
                "prompt": "Please fix the build.",
                "tool_name": "Bash",
                "tool_input": {"command": "ls"},
            }
            started = time.monotonic()
            try:
                done = subprocess.run(
                    ["bash", str(wrapper)],
                    input=json.dumps(event),
                    capture_output=True,
                    text=True,
                    env=environment,
                    cwd=project,
                    timeout=HOOK_LIMIT,
                )
                replies.append(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "")
            except subprocess.TimeoutExpired:
                replies.append("hung")
            seconds.append(round(time.monotonic() - started, 2))
        time.sleep(1.0)  # late deliveries
        log = Path("/tmp/hook-error.log")  # the wrapper's stderr of the last hook
        errors = log.read_text(errors="replace")[-600:] if log.exists() else ""
        return {
            "sent": events,
            "socketio": dashboard.channels[SOCKETIO],
            "http": dashboard.channels[HTTP],
            "replies": replies,
            "seconds": seconds,
            "last_error": errors,
        }


if __name__ == "__main__":
    print(json.dumps(_run(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "")))
