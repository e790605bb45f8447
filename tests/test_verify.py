"""``verify`` on real installs, run the way claude-mpm runs its hook (marker ``deploy``).

Virtual environments with a real ``pip install claude-mpm==V`` are made once in the cache
(``bench.corpus.installed``); websocket-client sits in a folder of its own and goes on
PYTHONPATH for the websocket runs, as it would be importable in a user's environment. Each
test starts from the release's pristine handler and puts it back afterwards, holding a lock
on the install meanwhile, because ``apply --installed`` patches it in place. Runs on different
installs or transports go side by side: they mostly wait (on hooks that hang until the 10 s
limit), and the module must stay within a few minutes. Nothing here asserts a time.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from bench import corpus
from fixer.cli import main
from fixer.verify.driver import DASHBOARD_PORT, SETTLE_SECONDS
from fixer.verify.launcher import namespace_available

pytestmark = pytest.mark.deploy

EVENTS = 6
# The keys README's "Prove it on your machine" documents for `verify --format json`.
FILE_KEYS = {
    "path",
    "status",
    "reasons",
    "notes",
    "flags",
    "hook",
    "isolation",
    "claude_code",
    "layout",
    "message",
    "python",
    "python_version",
    "packages",
    "transport",
    "events",
    "hang_limit",
    "per_process",
    "long_lived",
}
PER_PROCESS_KEYS = {
    "condition",
    "hang_limit",
    "sent",
    "hook_seconds",
    "hook_seconds_median",
    "hook_seconds_max",
    "hung",
    "replies_not_continue",
    "failures",
    "delivered",
    "expected",
    "connections_opened",
    "connections_left_open",
    "exit_errors",
    "channels",
    "errors_reported",
    "not_run",
}
LONG_LIVED_KEYS = {
    "calls",
    "hang_limit",
    "calls_done",
    "hung_call",
    "exited",
    "exit_code",
    "exit_seconds",
    "replies_not_continue",
    "failures",
    "sent",
    "delivered",
    "expected",
    "connections_opened",
    "peak_open",
    "connections_left_open",
    "collections",
    "cleanup_interval",
    "max_connections",
    "channels",
}
# One release per family the package index serves (issue 17), and what verify must say of each.
FAMILY_EVENTS = 3  # a prompt, a Task delegation, its result: every kind of event the families treat apart
FAMILIES = {
    "4.0.4": ("fail", "hook processes failed with the server up (ImportError: attempted relative import"),
    "4.0.20": ("fail", "per process: nothing delivered"),
    "4.1.1": ("fail", "per process: nothing delivered"),
    "4.1.5": ("fail", "the hooks wrote: Error handling UserPromptSubmit: 'ClaudeHookHandler' object has no attribute"),
    "4.1.10": ("pass", None),
    "5.9.10": ("pass", None),
}


@contextlib.contextmanager
def pristine_install(version: str, required) -> Iterator[str]:
    """The python of a real claude-mpm install whose handler is the release's own, for the time of the block."""
    required(corpus.installed, version)  # made once; fails in CI, skips elsewhere, when pip cannot reach the index
    with corpus.pristine_install(version) as (python, _):
        yield str(python)


def verify(
    python: str,
    cwd: Path,
    websocket: Path | None = None,
    output: str = "json",
    events: int = EVENTS,
    **variables: str,
) -> subprocess.CompletedProcess:
    """``fix-memory-leaks verify --installed`` as a user runs it; ``websocket``: websocket-client's folder."""
    environment = dict(os.environ, NO_COLOR="1", **variables)
    environment.pop("PYTHONPATH", None)
    if websocket is not None:
        environment["PYTHONPATH"] = str(websocket)
    command = [
        sys.executable,
        "-m",
        "fixer",
        "verify",
        "--installed",
        "--python",
        python,
        "--events",
        str(events),
        "--format",
        output,
    ]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=environment, timeout=600)


def verdict(run: subprocess.CompletedProcess) -> dict:
    document = json.loads(run.stdout)
    assert len(document["files"]) == 1, document
    return document["files"][0]


@pytest.fixture(scope="module")
def contrasts(required, tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """verify on unpatched 3.8.1 (text) and on upstream's own fix, 3.9.4, over both transports (json)."""
    websocket = required(corpus.websocket_client)
    cwd = tmp_path_factory.mktemp("verify")
    unpatched_install, upstream_install = pristine_install("3.8.1", required), pristine_install("3.9.4", required)
    with unpatched_install as unpatched, upstream_install as upstream, ThreadPoolExecutor(max_workers=3) as pool:
        runs = {
            "3.8.1": pool.submit(verify, unpatched, cwd, output="text"),
            "3.9.4 polling": pool.submit(verify, upstream, cwd),
            "3.9.4 websocket": pool.submit(verify, upstream, cwd, websocket),
        }
        return {name: run.result() for name, run in runs.items()}


def test_unpatched_install_fails_and_says_why(contrasts):
    run = contrasts["3.8.1"]
    assert run.returncode == 1, run.stderr
    assert ": fail" in run.stderr
    reasons = [line.strip() for line in run.stderr.splitlines() if line.strip().startswith("✗")]
    # Its hooks wait for the server's next ping before they exit, per process and in the long-lived run.
    assert any("hung" in reason for reason in reasons), run.stderr
    # One hang fails a run: the hooks after it are not waited out one by one.
    stopped = [reason for reason in reasons if "hook 1 of 6 hung with the server up" in reason]
    assert stopped and "the 5 after it not run" in stopped[0], reasons
    assert "verify: 1 fail" in run.stderr


def test_upstream_fix_over_polling_loses_events_or_leaves_connections_open(contrasts):
    run = contrasts["3.9.4 polling"]
    assert run.returncode == 1, run.stderr
    result = verdict(run)
    assert result["status"] == "fail" and result["transport"] == "polling"
    assert any("events lost" in reason or "left open" in reason for reason in result["reasons"]), result["reasons"]


def test_upstream_fix_with_websocket_client_hangs(contrasts):
    run = contrasts["3.9.4 websocket"]
    assert run.returncode == 1, run.stderr
    result = verdict(run)
    assert result["status"] == "fail" and result["transport"] == "websocket"
    assert any("hung" in reason for reason in result["reasons"]), result["reasons"]


def test_json_has_the_documented_keys(contrasts):
    document = json.loads(contrasts["3.9.4 polling"].stdout)
    assert set(document) == {"files", "summary"}
    assert document["summary"] == {"fail": 1}
    result = document["files"][0]
    assert set(result) == FILE_KEYS
    assert set(result["per_process"]) == {"server_up", "no_server", "wedged"}
    for condition, run in result["per_process"].items():
        assert set(run) == PER_PROCESS_KEYS
        assert len(run["hook_seconds"]) + run["not_run"] == (3 if condition == "wedged" else EVENTS)
    assert result["hook"]["how"] == "python hook_handler.py (as hook_wrapper.sh runs it)"
    assert set(result["long_lived"]) == LONG_LIVED_KEYS
    assert set(result["long_lived"]["collections"]["active_delegations"]) == {"peak", "limit", "limit_name"}
    assert result["packages"]["claude-mpm"] == "3.9.4"


@pytest.mark.parametrize("version", ["3.8.1", "3.4.27"])
def test_patched_install_passes_over_both_transports(version, required, tmp_path):
    websocket = required(corpus.websocket_client)
    with pristine_install(version, required) as python:
        assert main(["apply", "--installed", "--python", python, "--quiet"]) == 0
        with ThreadPoolExecutor(max_workers=2) as pool:
            polling, over_websocket = pool.map(lambda folder: verify(python, tmp_path, folder), [None, websocket])
    for run, transport in ((polling, "polling"), (over_websocket, "websocket")):
        result = verdict(run)
        assert (run.returncode, result["status"], result["transport"]) == (0, "pass", transport), result["reasons"]


@pytest.fixture(scope="module")
def families(required, tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """verify (json) on one real install of each later family, three at a time."""
    cwd = tmp_path_factory.mktemp("families")

    def install_and_verify(version: str) -> subprocess.CompletedProcess:  # the installs, too, go side by side
        return verify(str(required(corpus.installed, version)), cwd, events=FAMILY_EVENTS)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(FAMILIES, pool.map(install_and_verify, FAMILIES)))


@pytest.mark.parametrize("version", list(FAMILIES))
def test_each_family_is_judged_by_what_its_hook_does(version, families):
    status, reason = FAMILIES[version]
    run = families[version]
    result = verdict(run)
    assert (result["status"], run.returncode) == (status, 0 if status == "pass" else 1), result["reasons"]
    if reason is not None:
        assert any(reason in line for line in result["reasons"]), result["reasons"]
    else:
        assert result["reasons"] == []
    assert result["packages"]["claude-mpm"] == version


def test_later_releases_post_over_http_and_5x_runs_its_shell_hook(families):
    later, fast = verdict(families["4.1.10"]), verdict(families["5.9.10"])
    assert later["per_process"]["server_up"]["channels"] == {"http": FAMILY_EVENTS + 1}  # + the subagent_start
    assert later["hook"]["how"].endswith("(as claude-hook-handler.sh runs it)")
    assert fast["hook"]["how"].startswith("bash claude-hook-fast.sh") and fast["long_lived"] is None
    assert fast["per_process"]["server_up"]["delivered"] == {
        "hook.user_prompt": 1,
        "hook.pre_tool": 1,
        "hook.post_tool": 1,
    }


@contextlib.contextmanager
def listener_on_dashboard_port() -> Iterator[list]:
    """A listener on 127.0.0.1:8765 outside verify, recording every connection it gets (skips if the port is taken)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", DASHBOARD_PORT))
    except OSError:
        listener.close()
        pytest.skip(f"port {DASHBOARD_PORT} is in use here: the test needs it for its own listener")
    listener.listen(16)
    connections: list = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                connections.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield connections
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(5)
        for connection in connections:
            connection.close()


@pytest.mark.xdist_group("dashboard-port")  # both listen on 127.0.0.1:8765: one worker, in turn
def test_a_dashboard_on_the_hard_coded_port_receives_nothing(required, tmp_path):
    """4.1.10 posts to 8765 and 5.x's fast hook to its port variable: neither reaches a server verify did not start."""
    if not namespace_available():
        pytest.skip("no private network namespace on this system: verify refuses instead (the next test)")
    pythons = [str(required(corpus.installed, version)) for version in ("4.1.10", "5.9.10")]
    with listener_on_dashboard_port() as connections:
        runs = [verify(python, tmp_path, events=2) for python in pythons]
        time.sleep(SETTLE_SECONDS)
        assert connections == []
    for run in runs:
        result = verdict(run)
        assert result["status"] == "pass", result["reasons"]
        assert result["isolation"].startswith("private network namespace")


@pytest.mark.xdist_group("dashboard-port")  # both listen on 127.0.0.1:8765: one worker, in turn
def test_without_a_namespace_a_taken_hard_coded_port_is_refused(required, tmp_path):
    python = str(required(corpus.installed, "4.1.10"))
    with listener_on_dashboard_port() as connections:
        run = verify(python, tmp_path, events=1, FIX_MEMORY_LEAKS_NETNS="0")
        assert connections == []
    result = verdict(run)
    assert (run.returncode, result["status"]) == (2, "error")
    assert result["message"].startswith(f"refused: this release's hook sends its events to port {DASHBOARD_PORT}")


def test_a_registered_python_hook_of_5x_is_run_and_its_hook_execution_events_counted(required):
    """The settings may name 5.x's claude-hook-handler.sh instead of the fast hook: verify runs what is registered."""
    from fixer.install.model import Target
    from fixer.verify import verify_target

    python = required(corpus.installed, "5.9.10")
    package = next(python.parents[1].glob("lib/python*/site-packages/claude_mpm"))
    script = package / "scripts" / "claude-hook-handler.sh"
    target = Target(package / "hooks" / "claude_hooks" / "hook_handler.py", str(python), "test", command=str(script))
    result = verify_target(target, events=2)
    assert (result.status, result.reasons) == ("pass", [])
    assert result.hook["how"].endswith("(as claude-hook-handler.sh runs it)") and result.hook["reply"] == "continue"
    assert result.figures is not None and result.figures.server_up is not None
    assert result.figures.server_up.delivered is not None
    assert result.figures.server_up.delivered["hook.hook_execution"] == 2


def _descendants(pid: int) -> dict[psutil.Process, str]:
    """What ``pid`` started, still running, with each command line."""
    found = {}
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            found[child] = " ".join(child.cmdline())
    return found


def test_verify_says_what_it_found_first_and_ctrl_c_stops_everything_it_started(required, tmp_path):
    """Unpatched 3.8.1, whose hooks hang: the first line names the handler, its layout and what will run, before
    any hook; Ctrl-C (SIGINT to the foreground group, as a terminal sends it) mid-run exits 130 in verify's words,
    and every hook, driver and server verify started is gone within 1 s."""
    with pristine_install("3.8.1", required) as python:
        environment = dict(os.environ, NO_COLOR="1")
        environment.pop("PYTHONPATH", None)
        command = [sys.executable, "-m", "fixer", "verify", "--installed", "--python", python, "--events", "4"]
        process = subprocess.Popen(
            command,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=environment,
            cwd=tmp_path,
            start_new_session=True,
        )
        assert process.stderr is not None
        first = process.stderr.readline()
        second = process.stderr.readline()  # the first run has started: its first hook runs (and hangs)
        deadline = time.monotonic() + 60
        started = _descendants(process.pid)
        while not any(line.endswith("hook_handler.py") for line in started.values()) and time.monotonic() < deadline:
            time.sleep(0.2)
            started = _descendants(process.pid)
        time.sleep(0.5)  # the hook is past its start: in the driver's wait for it
        os.killpg(process.pid, signal.SIGINT)
        rest = process.communicate(timeout=30)[1]
        _, alive = psutil.wait_procs(list(started), timeout=1.0)
    assert "hook_handler.py: layout 3.6-3.9.2" in first and "runs python hook_handler.py" in first, first
    assert "per process, server up" in second, second
    assert any(line.endswith("hook_handler.py") for line in started.values()), started  # a hook was running
    assert process.returncode == 130, rest
    assert "interrupted; every hook and server verify started is stopped" in rest, rest
    assert "nothing was written" not in rest and "fully patched" not in rest
    assert [started[child] for child in alive] == []
