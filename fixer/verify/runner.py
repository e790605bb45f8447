"""Measuring (IO): start the driver in the install's interpreter, isolated, and judge what it measured.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from codemods.reading.shape import UnsupportedShape, inspect

from .driver import DASHBOARD_PORT, DEFAULT_EVENTS, HANG_LIMIT_SECONDS, PROGRESS_PREFIX, SETTLE_SECONDS, WEDGED_EVENTS
from .figures import Figures
from .hooks import HookRun, Target, hook_run
from .verdict import ERROR, Expectation, add_expected, judge

if TYPE_CHECKING:
    from ..install import discovery

DRIVER = Path(__file__).with_name("driver.py")
# Set to 0 to run without a network namespace even where one is available (the fallback's own tests).
NAMESPACE_VARIABLE = "FIX_MEMORY_LEAKS_NETNS"
IN_NAMESPACE = "private network namespace (unshare -rn): the hooks reach only verify's servers, on port 8765"

Progress = Callable[[str, int, int], None]


class VerifyError(Exception):
    """The handler could not be measured: not a handler, missing packages, a driver that failed, a port taken."""


@dataclass
class Verification:
    """The verdict on one handler, with the figures it rests on."""

    path: str
    status: str
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    layout: str = ""
    message: str = ""  # why it could not be verified (status error)
    figures: Figures | None = None
    document: dict = field(default_factory=dict)  # the driver's JSON, with the expected deliveries added
    flags: list[str] = field(default_factory=list)
    hook: dict = field(default_factory=dict)  # how the hook was run, and which file said so
    isolation: str = ""

    def as_json(self) -> dict:
        figures = self.document
        return {
            "path": self.path,
            "status": self.status,
            "reasons": self.reasons,
            "notes": self.notes,
            "flags": self.flags,
            "layout": self.layout,
            "message": self.message,
            "hook": self.hook,
            "isolation": self.isolation,
            **{
                key: figures.get(key)
                for key in ("python", "python_version", "packages", "transport", "events", "hang_limit", "claude_code")
            },
            "per_process": figures.get("per_process", {}),
            "long_lived": figures.get("long_lived", {}),
        }


def verify_file(
    path: Path, python: str, events: int = DEFAULT_EVENTS, progress: Progress | None = None
) -> Verification:
    """Verify the handler at ``path`` as run by ``python`` (the wrapper found beside it decides how)."""
    return verify_target(Target(path, python), events, progress)


def verify_target(target: Target, events: int = DEFAULT_EVENTS, progress: Progress | None = None) -> Verification:
    """Run ``target``'s hook as its wrapper does (both runs) and judge it; errors become status ``error``."""
    path = target.handler
    try:
        source = path.read_bytes()
        shape = inspect(source)
    except OSError as error:
        return Verification(str(path), ERROR, message=f"cannot read it: {error.strerror or error}")
    except (SyntaxError, ValueError) as error:
        return Verification(str(path), ERROR, message=f"not valid Python: {error}")
    except UnsupportedShape as error:
        return Verification(str(path), ERROR, message=f"not a claude-mpm hook handler this tool knows: {error}")
    try:
        run = hook_run(target)
        hook = {
            "how": run.how,
            "command": run.launch.command,
            "environment": run.launch.environment,
            "reply": run.launch.reply,
            "origin": target.origin,
        }
        document, isolation = run_driver(target.python, path, events, progress, run)
    except (VerifyError, LookupError) as error:
        return Verification(str(path), ERROR, layout=shape.layout, message=str(error))
    figures = Figures.from_json(document)
    expectation = Expectation(run.sources, run.has_dashboard)
    add_expected(figures, expectation)
    _copy_expected(document, figures)
    verdict = judge(figures, expectation)
    return Verification(
        str(path),
        verdict.status,
        verdict.reasons,
        [*run.notes, *verdict.notes],
        shape.layout,
        figures=figures,
        document=document,
        flags=verdict.flags,
        hook=hook,
        isolation=isolation,
    )


def verify_installed(found: discovery.Target, events: int = DEFAULT_EVENTS, progress: Progress | None = None):
    """A hook ``--installed`` found in Claude Code's settings (or the PATH): run in the interpreter its registered
    command uses, as that command runs it; one that cannot run as registered is an error with its reason and fix."""
    if found.error or found.handler is None or found.python is None:
        return Verification(found.label, ERROR, message=found.error or "not located")
    return verify_target(Target(found.handler, found.python, found.command, found.origin), events, progress)


def _copy_expected(document: dict, figures: Figures) -> None:
    for condition, run in figures.per_process.items():
        document["per_process"][condition]["expected"] = run.expected
    if figures.long_lived is not None:
        document["long_lived"]["expected"] = figures.long_lived.expected


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
    """(the command prefix and driver flags, a sentence for the report) that keep ``run``'s hooks on
    verify's servers; raise VerifyError where that cannot be done."""
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


def run_driver(python: str, handler: Path, events: int, progress: Progress | None, run: HookRun) -> tuple[dict, str]:
    """(the driver's figures for ``handler``, measured in ``python``, how it was isolated).

    The environment, PYTHONPATH included, is passed through: it is what decides the transport
    (websocket-client importable or not). Bytecode is not written: verify changes nothing.
    """
    flags, isolation = isolation_for(run)
    command = [python, str(DRIVER), str(os.path.abspath(handler)), "--events", str(events), *flags]
    command += ["--launch", json.dumps(run.launch.as_json())]
    if "--netns" in flags:
        command = ["unshare", "-rn", *command]
    environment = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
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
    return figures, isolation


def time_budget(events: int) -> float:
    """The longest a verification can take: every hook and long-lived call hanging to the limit."""
    return (3 * events + WEDGED_EVENTS + 1) * (HANG_LIMIT_SECONDS + 1) + 4 * SETTLE_SECONDS
