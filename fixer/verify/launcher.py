"""Launching the driver (IO): in the install's interpreter, isolated, bounded, its progress passed on.

Isolation: the hooks under test must reach only servers verify started. Where Linux lets an
unprivileged user make a private network namespace (``unshare -rn``), the driver and every
hook run inside one, with a loopback of their own: the release's own port (8765) is served
there by the driver, and nothing outside can be reached. Elsewhere the hooks get a free port
through their port variables, unless their code hard-codes 8765: then verify serves 8765 itself
while it is free, and refuses the handler (exit 2) while something else listens there.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
import threading
from collections import deque
from pathlib import Path
from typing import Callable

from codemods.fixes.registry import verify_expectations

from ..install.model import Target
from .driver.boot import driver_command
from .driver.contract import (
    DASHBOARD_PORT,
    HANG_LIMIT_SECONDS,
    PROGRESS_PREFIX,
    SETTLE_SECONDS,
    WEDGED_EVENTS,
    HandlerNames,
)
from .hooks import HookRun

# Set to 0 to run without a network namespace even where one is available (the fallback's own tests).
NAMESPACE_VARIABLE = "FIX_MEMORY_LEAKS_NETNS"
STOP_SECONDS = 0.6  # Ctrl-C: what verify started is gone within a second
IN_NAMESPACE = "private network namespace (unshare -rn): the hooks reach only verify's servers, on port 8765"

Progress = Callable[[str, int, int], None]


class VerifyError(Exception):
    """The handler could not be measured: not a handler, missing packages, a driver that failed, a port taken."""


def handler_names() -> HandlerNames:
    """What the driver measures on a handler, as the fixes name it."""
    return HandlerNames(**verify_expectations())


@functools.cache
def namespace_available() -> bool:
    """Can this user make a private network namespace (Linux, unprivileged user namespaces allowed)?"""
    if os.environ.get(NAMESPACE_VARIABLE) == "0" or shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def port_in_use(port: int) -> bool:
    """Is something listening on 127.0.0.1:``port`` (or holding it)?"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def isolation_for(run: HookRun) -> tuple[list[str], str]:
    """(the driver flags, a sentence for the report) that keep ``run``'s hooks on verify's servers;
    raise VerifyError where that cannot be done."""
    if namespace_available():
        run.launch.port = DASHBOARD_PORT
        return ["--netns"], IN_NAMESPACE
    if run.hard_coded_port:
        if port_in_use(DASHBOARD_PORT):
            raise VerifyError(
                f"refused: this release's hook sends its events to port {DASHBOARD_PORT} whatever its environment "
                f"says, something else listens on {DASHBOARD_PORT} (a claude-mpm dashboard?), and this system "
                "allows no private network namespace (unshare -rn) to keep the test events away from it: "
                f"stop what listens on {DASHBOARD_PORT} and run verify again, or run it where unprivileged user "
                "namespaces are allowed (Linux: sysctl kernel.unprivileged_userns_clone=1)"
            )
        run.launch.port = DASHBOARD_PORT
        return [], f"host loopback, port {DASHBOARD_PORT} held by verify (no network namespace here)"
    run.launch.port = 0
    return [], "host loopback, a free port in the hook's port variables (no network namespace here)"


def run_driver(target: Target, events: int, progress: Progress | None, run: HookRun, isolation: list[str]) -> dict:
    """The driver's figures for ``target``'s handler, measured in its python, with the flags of ``isolation``.

    The environment, PYTHONPATH included, is passed through: it is what decides the transport
    (websocket-client importable or not); the wrapper's own PYTHONPATH (a source checkout's) goes in
    front, as the wrapper puts it. Bytecode is not written: verify changes nothing. Interrupted, the
    driver is stopped (it stops its hooks first) before this returns.
    """
    python, handler = str(target.python), Path(str(target.handler))
    flags = isolation
    arguments = [str(os.path.abspath(handler)), "--events", str(events), *flags]
    arguments += ["--launch", json.dumps(run.launch.as_json()), "--names", json.dumps(handler_names().as_json())]
    command = driver_command(python, *arguments)
    if "--netns" in flags:
        command = ["unshare", "-rn", *command]
    environment = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    if target.pythonpath:
        environment["PYTHONPATH"] = os.pathsep.join([*target.pythonpath, *filter(None, [os.environ.get("PYTHONPATH")])])
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
    except OSError as error:
        raise VerifyError(f"cannot run {python}: {error.strerror or error}") from None
    assert process.stdout is not None and process.stderr is not None  # both are pipes
    output, errors = process.stdout, process.stderr
    stdout: list[str] = []
    reader = threading.Thread(target=lambda: stdout.append(output.read()), daemon=True)
    reader.start()
    budget = time_budget(events)
    expired = threading.Event()

    def expire() -> None:  # the driver bounds every hook; this bounds the driver
        expired.set()
        process.kill()

    watchdog = threading.Timer(budget, expire)
    watchdog.start()
    diagnostics: deque = deque(maxlen=5)
    try:
        for line in errors:
            if line.startswith(PROGRESS_PREFIX):
                if progress is not None:
                    step = json.loads(line[len(PROGRESS_PREFIX) :])
                    progress(step["stage"], step["done"], step["total"])
            elif line.strip():
                diagnostics.append(line.strip())
        process.wait()
    except BaseException:  # Ctrl-C: nothing verify started may outlive it
        stop(process)
        raise
    finally:
        watchdog.cancel()
    reader.join()
    try:
        figures: dict = json.loads("".join(stdout))
    except ValueError:
        if expired.is_set():
            raise VerifyError(f"the measuring run in {python} did not finish within {budget:g} s") from None
        detail = diagnostics[-1] if diagnostics else f"exit code {process.returncode}, no output"
        raise VerifyError(f"the measuring run failed in {python}: {detail}") from None
    if "error" in figures:
        missing = " ".join(figures.get("missing", []))
        hint = f"; install them with: {python} -m pip install {missing}" if missing else ""
        raise VerifyError(figures["error"] + hint)
    return figures


def stop(process: subprocess.Popen) -> None:
    """Stop the driver: SIGTERM unwinds it (each run kills its hook's process group on the way out); what
    is still there after STOP_SECONDS is killed."""
    process.terminate()
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def time_budget(events: int) -> float:
    """The longest a verification can take: every hook and long-lived call hanging to the limit."""
    return (3 * events + WEDGED_EVENTS + 1) * (HANG_LIMIT_SECONDS + 1) + 4 * SETTLE_SECONDS
