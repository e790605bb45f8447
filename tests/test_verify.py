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
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench import corpus
from fixer.cli import main

pytestmark = pytest.mark.deploy

EVENTS = 6
# The keys README's "Prove it on your machine" documents for `verify --format json`.
FILE_KEYS = {
    "path",
    "status",
    "reasons",
    "notes",
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
}


@contextlib.contextmanager
def pristine_install(version: str, required) -> Iterator[str]:
    """The python of a real claude-mpm install whose handler is the release's own, for the time of the block."""
    required(corpus.installed, version)  # made once; fails in CI, skips elsewhere, when pip cannot reach the index
    with corpus.pristine_install(version) as (python, _):
        yield str(python)


def verify(python: str, cwd: Path, websocket: Path | None = None, output: str = "json") -> subprocess.CompletedProcess:
    """``fix-memory-leaks verify --installed`` as a user runs it; ``websocket``: websocket-client's folder."""
    environment = dict(os.environ, NO_COLOR="1")
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
        str(EVENTS),
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
    assert set(result["per_process"]) == {"server_up", "no_server"}
    for run in result["per_process"].values():
        assert set(run) == PER_PROCESS_KEYS
        assert len(run["hook_seconds"]) == EVENTS
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
