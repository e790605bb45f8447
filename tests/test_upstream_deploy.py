"""claude-mpm's own fix (3.9.4, 3.9.11), repaired by ``apply`` on a real install, run as claude-mpm runs it.

Marker ``deploy``: the cached real installs of ``bench.corpus``, one hook process per event
against the dashboard-like server of ``fixer.verify.driver`` (server up, nothing listening, a
server that never answers), over long-polling (claude-mpm's own dependencies) and websocket
(websocket-client on PYTHONPATH), then a long-lived burst of ``main()`` calls, and ``verify``.
The only time asserted is a hang bound: a server that never answers may hold a hook about 1 s
longer than no server at all (it held upstream's 5.5 s).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench import corpus
from fixer.cli import main
from fixer.verify import expected_deliveries, handler_names
from fixer.verify.driver import CONTINUE, Condition, processes, run_long_lived, run_per_process

pytestmark = pytest.mark.deploy

VERSIONS = ("3.9.4", "3.9.11")
TRANSPORTS = ("polling", "websocket")
EVENTS = 6  # hook processes per server condition
CALLS = 40  # main() calls of the long-lived burst
WEDGED_EXTRA_SECONDS = 1.25  # "about 1 s" more than no server, with room for a busy 2-core machine


def verify_installed(python: Path, cwd: Path, websocket: Path | None) -> subprocess.CompletedProcess:
    """``fix-memory-leaks verify --installed --python PY --format json``, as a user runs it."""
    environment = dict(os.environ, NO_COLOR="1")
    environment.pop("PYTHONPATH", None)
    if websocket is not None:
        environment["PYTHONPATH"] = str(websocket)
    command = [sys.executable, "-m", "fixer", "verify", "--installed", "--python", str(python), "--format", "json"]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=environment, timeout=600)


def run_hooks(python: Path, handler: Path, websocket: Path | None, monkeypatch) -> dict:
    """Each server condition's run, the long-lived burst, and every hook process's (stdout, stderr)."""
    outputs: list[tuple[str, str]] = []
    real_run_hook = processes.run_hook

    def recording(*args, **kwargs):
        elapsed, returncode, stdout, stderr = real_run_hook(*args, **kwargs)
        outputs.append((stdout, stderr))
        return elapsed, returncode, stdout, stderr

    with monkeypatch.context() as patch:
        patch.setattr(processes, "run_hook", recording)
        if websocket is None:
            patch.delenv("PYTHONPATH", raising=False)
        else:
            patch.setenv("PYTHONPATH", str(websocket))
        figures = {condition: run_per_process(str(python), handler, EVENTS, condition) for condition in Condition}
        figures["long_lived"] = run_long_lived(str(python), handler, CALLS, names=handler_names())
    figures["outputs"] = outputs
    return figures


@pytest.fixture(scope="module")
def repaired_runs(required, tmp_path_factory):
    """(version, transport) -> figures, for 3.9.4 and 3.9.11 repaired in their real installs; and verify's runs."""
    websocket = required(corpus.websocket_client)
    folders = {"polling": None, "websocket": websocket}
    cwd = tmp_path_factory.mktemp("upstream-deploy")
    monkeypatch = pytest.MonkeyPatch()
    results = {}
    try:
        for version in VERSIONS:
            required(corpus.installed, version)
            with corpus.pristine_install(version) as (python, handler), ThreadPoolExecutor(max_workers=2) as pool:
                assert main(["apply", str(handler), "--quiet"]) == 0
                source = handler.read_bytes()
                assert source != corpus.handler(version)
                verifying = {t: pool.submit(verify_installed, python, cwd, folder) for t, folder in folders.items()}
                for transport, folder in folders.items():
                    results[version, transport] = {"source": source, **run_hooks(python, handler, folder, monkeypatch)}
                for transport, run in verifying.items():
                    results[version, transport]["verify"] = run.result()
    finally:
        monkeypatch.undo()
    return results


CASES = [
    pytest.param(version, transport, id=f"{version}-{transport}") for version in VERSIONS for transport in TRANSPORTS
]


@pytest.mark.parametrize(("version", "transport"), CASES)
def test_every_event_is_delivered_and_no_connection_left_open(repaired_runs, version, transport):
    figures = repaired_runs[version, transport]
    up = figures[Condition.SERVER_UP]
    assert up.hung == 0 and up.failures == [], up.failures
    assert up.delivered == expected_deliveries(figures["source"], up.sent)
    assert up.connections_left_open == 0 and up.connections_opened == EVENTS


@pytest.mark.parametrize(("version", "transport"), CASES)
def test_every_hook_replies_exactly_once_and_none_hangs(repaired_runs, version, transport):
    figures = repaired_runs[version, transport]
    assert len(figures["outputs"]) == 3 * EVENTS
    for stdout, stderr in figures["outputs"]:
        assert [json.loads(line) for line in stdout.splitlines()] == [CONTINUE], stdout
        assert "Exception ignored" not in stderr and "Traceback" not in stderr, stderr[-1000:]
    assert all(figures[condition].hung == 0 for condition in Condition)


@pytest.mark.parametrize(("version", "transport"), CASES)
def test_a_server_that_never_answers_holds_a_hook_about_a_second_at_most(repaired_runs, version, transport):
    figures = repaired_runs[version, transport]
    wedged, nothing = (statistics.median(figures[c].hook_seconds) for c in (Condition.WEDGED, Condition.NO_SERVER))
    assert wedged - nothing <= WEDGED_EXTRA_SECONDS, (wedged, nothing)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_long_lived_burst_survives_every_call_and_delivers_alike_over_both_transports(repaired_runs, version):
    delivered = {}
    for transport in TRANSPORTS:
        figures = repaired_runs[version, transport]
        burst = figures["long_lived"]
        assert (burst.calls_done, burst.hung_call, burst.exited, burst.exit_code) == (CALLS, None, True, 0), burst
        assert burst.replies_not_continue == 0 and burst.failures == [], burst.failures
        assert burst.delivered == expected_deliveries(figures["source"], burst.sent)
        assert burst.connections_left_open == 0
        delivered[transport] = sum(burst.delivered.values())
    assert delivered["polling"] == delivered["websocket"] > 0


@pytest.mark.parametrize(("version", "transport"), CASES)
def test_verify_passes_on_the_repaired_install(repaired_runs, version, transport):
    run = repaired_runs[version, transport]["verify"]
    (result,) = json.loads(run.stdout)["files"]
    assert (run.returncode, result["status"], result["transport"]) == (0, "pass", transport), result["reasons"]
    assert result["packages"]["claude-mpm"] == version
    assert Path(result["path"]).name == "hook_handler.py"
