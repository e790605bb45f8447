"""``verify`` without claude-mpm: the verdict on made-up figures, and the driver on tiny stand-in handlers.

The real installs are in ``tests/test_verify.py``; these run in seconds and pin down what each
figure makes the verdict say, and that the driver kills what hangs and counts what arrives.
"""

from __future__ import annotations

import ast
import copy
import json
import socket
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

import fixer.verify.driver as driver
from codemods.reading import shape
from fixer.cli import main
from fixer.verify import DEFAULT_EVENTS, Expectation, expected_deliveries, handler_names, judge
from fixer.verify.figures import Figures
from fixer.verify.verdict import add_expected

ROOT = Path(__file__).resolve().parent.parent
ACTION, CONTINUE = driver.Reply.ACTION.value, driver.Reply.CONTINUE.value  # the contracts of 3.x-4.x and 5.x
SENT = {"UserPromptSubmit": 2, "PreToolUse": 2, "PostToolUse": 1, "SubagentStop": 1, "Stop": 1}
ANNOUNCES_SUBAGENTS = b"self._emit_socketio_event('/hook', 'subagent_start', data)"
SOCKETIO_HANDLER = Expectation(ANNOUNCES_SUBAGENTS, expects_events=True)
DELIVERED = {
    "hook.user_prompt": 2,
    "hook.pre_tool": 2,
    "hook.post_tool": 1,
    "hook.subagent_stop": 1,
    "hook.stop": 1,
    "hook.subagent_start": 2,
}


def per_process(condition: str, counted: bool, hooks: int = 7) -> dict:
    return {
        "condition": condition,
        "hang_limit": 10.0,
        "sent": dict(SENT),
        "hook_seconds": [0.5] * hooks,
        "hung": 0,
        "replies_not_continue": 0,
        "failures": [],
        "delivered": dict(DELIVERED) if counted else None,
        "connections_opened": 7 if counted else None,
        "connections_left_open": 0 if counted else None,
        "exit_errors": 0,
        "channels": {"socketio": 9} if counted else None,
        "hook_seconds_median": 0.5,
        "hook_seconds_max": 0.5,
    }


def good_document() -> dict:
    """What a handler that does everything right gives: the patched handler's goal (the driver's JSON)."""
    return {
        "python": "/usr/bin/python3",
        "python_version": "3.11.7",
        "packages": {"claude-mpm": "3.8.1"},
        "transport": "polling",
        "events": 7,
        "hang_limit": 10.0,
        "claude_code": "stand-in (2.0.0 (Claude Code))",
        "per_process": {
            driver.Condition.SERVER_UP: per_process(driver.Condition.SERVER_UP, True),
            driver.Condition.NO_SERVER: per_process(driver.Condition.NO_SERVER, False),
            driver.Condition.WEDGED: per_process(driver.Condition.WEDGED, False, hooks=3),
        },
        "long_lived": {
            "calls": 7,
            "hang_limit": 10.0,
            "calls_done": 7,
            "hung_call": None,
            "exited": True,
            "exit_code": 0,
            "exit_seconds": 0.1,
            "replies_not_continue": 0,
            "failures": [],
            "sent": dict(SENT),
            "delivered": dict(DELIVERED),
            "connections_opened": 1,
            "peak_open": 1,
            "connections_left_open": 0,
            "collections": {
                "active_delegations": {"peak": 250, "limit": 200, "limit_name": "MAX_DELEGATION_TRACKING"},
                "_git_branch_cache": {"peak": 3, "limit": None, "limit_name": None},
            },
            "cleanup_interval": 100,
            "max_connections": 3,
            "channels": {"socketio": 9},
        },
    }


def verdict_of(document: dict, expectation: Expectation = SOCKETIO_HANDLER):
    return judge(add_expected(Figures.from_json(document), expectation), expectation)


def test_expected_deliveries_follow_what_the_release_emits():
    assert expected_deliveries(b"", {"PreToolUse": 2, "Stop": 1}) == {"hook.pre_tool": 2, "hook.stop": 1}
    assert expected_deliveries(ANNOUNCES_SUBAGENTS, {"PreToolUse": 2}) == {"hook.pre_tool": 2, "hook.subagent_start": 2}
    # 5.x's Python hook adds one hook_execution per hook event.
    assert expected_deliveries(b'self._emit_socketio_event("", "hook_execution", data)', {"Stop": 2}) == {
        "hook.stop": 2,
        "hook.hook_execution": 2,
    }
    # 4.1.10+ write it with double quotes: the same event.
    assert expected_deliveries(b'emit("subagent_start", data)', {"PreToolUse": 1}) == {
        "hook.pre_tool": 1,
        "hook.subagent_start": 1,
    }


def test_a_handler_that_does_everything_right_passes():
    verdict = verdict_of(good_document())
    assert (verdict.status, verdict.reasons, verdict.notes, verdict.flags) == ("pass", [], [], [])


def _set(path: str, value):
    """A change to the good figures: ``path`` is keys joined by dots."""

    def change(figures: dict) -> None:
        *keys, last = path.split(".")
        target = figures
        for key in keys:
            target = target[key]
        target[last] = value

    return change


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_set("per_process.server_up.hung", 3), "per process: 3 of 7 hook processes hung with the server up"),
        (_set("per_process.no_server.hung", 1), "per process: 1 of 7 hook processes hung with no server listening"),
        pytest.param(
            lambda figures: figures["per_process"]["server_up"].update(hung=1, hook_seconds=[0.5, 10.0], not_run=5),
            "per process: hook 2 of 7 hung with the server up (killed after 10 s; the 5 after it not run)",
            id="stopped at the first hang",
        ),
        (
            _set("per_process.server_up.replies_not_continue", 1),
            "per process: 1 of 7 hook processes did not reply continue with the server up",
        ),
        (
            _set("per_process.server_up.delivered", {"hook.user_prompt": 2}),
            "per process: events lost: 2 of 9 delivered (lost 2 hook.pre_tool, 1 hook.post_tool",
        ),
        (_set("per_process.server_up.delivered", {}), "per process: nothing delivered: 0 of 9 events"),
        (_set("per_process.server_up.connections_left_open", 7), "per process: 7 of 7 connections left open"),
        (_set("long_lived.hung_call", 4), "long-lived: call 4 of 7 hung (killed after 10 s)"),
        (_set("long_lived.exited", False), "long-lived: the process did not exit within 10 s of its last call"),
        (_set("long_lived.calls_done", 5), "long-lived: the process ended after 5 of 7 calls (exit code 0)"),
        (_set("long_lived.replies_not_continue", 2), "long-lived: 2 of 7 calls did not reply continue"),
        (_set("long_lived.delivered", {}), "long-lived: nothing delivered: 0 of 9 events"),
        (_set("long_lived.connections_left_open", 1), "long-lived: 1 connection left open at the server"),
        (_set("long_lived.peak_open", 4), "long-lived: 4 connections open at once (at most 3)"),
        (
            _set("long_lived.collections.active_delegations.peak", 301),
            "long-lived: active_delegations grew to 301 entries (limit 200 + one cleanup interval of 100)",
        ),
    ],
)
def test_each_failure_is_named(change, reason):
    document = copy.deepcopy(good_document())
    change(document)
    verdict = verdict_of(document)
    assert verdict.status == "fail"
    assert len(verdict.reasons) == 1 and verdict.reasons[0].startswith(reason), verdict.reasons


def test_without_a_dashboard_events_and_connections_are_not_applicable():
    document = good_document()
    for run in [document["per_process"][driver.Condition.SERVER_UP], document["long_lived"]]:
        run.update(delivered={}, connections_opened=0, connections_left_open=3)
    document["long_lived"]["collections"] = {}
    verdict = verdict_of(document, Expectation(b"", expects_events=False))
    assert (verdict.status, verdict.reasons) == ("pass", [])
    assert verdict.notes == [
        "no dashboard in this install and no Socket.IO client in this handler: events not applicable"
    ]


def test_collections_without_a_limit_are_reported_not_judged():
    document = good_document()
    document["long_lived"]["collections"]["active_delegations"].update(peak=5000, limit=None)
    verdict = verdict_of(document)
    assert verdict.reasons == []
    assert verdict.notes == [
        "long-lived: no size limit on active_delegations in this handler: peak sizes reported, not judged"
    ]


def test_time_against_a_server_that_never_answers_is_reported_not_failed():
    document = good_document()
    wedged = document["per_process"][driver.Condition.WEDGED]
    wedged.update(hook_seconds=[4.4, 4.6, 10.0], hung=1, hook_seconds_median=4.6, hook_seconds_max=10.0)
    verdict = verdict_of(document)
    assert (verdict.status, verdict.reasons) == ("pass", [])
    assert verdict.flags == [
        "against a server that never answers, a hook takes up to 10.0 s (median 4.6 s of 3 hooks, 1 killed at 10 s): "
        "Claude Code waits that long on every event while the dashboard hangs"
    ]
    wedged.update(hook_seconds=[1.9] * 3, hung=0, hook_seconds_median=1.9, hook_seconds_max=1.9)
    assert verdict_of(document).flags == []


# ---------------------------------------------------------------- one verdict per release family
# The figures are the shape of what the driver measured on each family's real install (5 events,
# server up; tests/test_verify.py runs the installs themselves).


def family(per_process_changes: dict, long_lived: dict | str | None = "good") -> dict:
    document = good_document()
    document["per_process"][driver.Condition.SERVER_UP].update(per_process_changes)
    if long_lived is None:
        document["long_lived"] = None
    elif long_lived != "good":
        document["long_lived"].update(long_lived)
    return document


IMPORT_ERROR = "ImportError: attempted relative import with no known parent package"
NOTHING = {"delivered": {}, "channels": {}, "connections_opened": 0}


@pytest.mark.parametrize(
    ("document", "expected_reasons"),
    [
        pytest.param(
            family({"delivered": {}, "connections_left_open": 7}, {"connections_left_open": 1}),
            ["per process: nothing delivered", "per process: 7 of 7 connections left open", "long-lived: 1 connection"],
            id="3.9.4-3.9.11: upstream's pool, closed only at exit",
        ),
        pytest.param(
            family(
                {
                    **NOTHING,
                    "exit_errors": 7,
                    "replies_not_continue": 7,
                    "failures": [f"hook 1 (UserPromptSubmit): exit 1: {IMPORT_ERROR}"],
                },
                {"calls_done": 0, "failures": [f"import: ImportError({IMPORT_ERROR!r})"], "delivered": {}},
            ),
            [
                f"per process: 7 of 7 hook processes failed with the server up ({IMPORT_ERROR}); the wrapper answers",
                "per process: nothing delivered",
                "long-lived: the handler does not import as its wrapper runs it",
            ],
            id="4.0.3-4.0.10: relative imports, run by path",
        ),
        pytest.param(
            family({**NOTHING, "hook_seconds_max": 5.8}, {"delivered": {}, "connections_opened": 0}),
            ["per process: nothing delivered", "long-lived: nothing delivered"],
            id="4.0.11-4.0.34 over polling, 4.1.0-4.1.8: nothing reaches the dashboard",
        ),
        pytest.param(
            family({**NOTHING, "errors_reported": ["Error handling PreToolUse: no attribute '_git_branch_cache'"]}),
            ["per process: nothing delivered: 0 of 9 events reached the dashboard; the hooks wrote: Error handling"],
            id="4.1.3-4.1.8: an error the hook swallows, named",
        ),
        pytest.param(
            family({"channels": {"http": 9}}, {"channels": {"http": 9}, "collections": {}}),
            [],
            id="4.1.10+: HTTP POST /api/events",
        ),
        pytest.param(
            family({"channels": {"http": 9}}, None),
            [],
            id="5.x fast hook: a shell script, no long-lived run",
        ),
    ],
)
def test_each_family_gets_its_verdict(document, expected_reasons):
    verdict = verdict_of(document)
    assert len(verdict.reasons) == len(expected_reasons), verdict.reasons
    for reason, start in zip(verdict.reasons, expected_reasons):
        assert reason.startswith(start), verdict.reasons
    assert verdict.status == ("fail" if expected_reasons else "pass")


def test_a_shell_hook_has_no_long_lived_run_and_says_so():
    verdict = verdict_of(family({}, None))
    assert verdict.notes == ["long-lived: not run (a shell hook: Claude Code starts it once per event)"]


# ---------------------------------------------------------------- the driver on stand-in handlers


def stand_in(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "claude_mpm" / "hooks" / "claude_hooks" / "hook_handler.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body))
    return path


def test_a_hook_process_that_hangs_is_killed_at_the_limit_and_the_run_stops_there(tmp_path):
    """One hang fails the run: the hooks after it are not started, so a release that hangs every hook costs one
    hang limit a run, not one a hook."""
    handler = stand_in(
        tmp_path,
        """\
        import time
        print('{"action": "continue"}', flush=True)
        time.sleep(60)
    """,
    )
    run = driver.run_per_process(sys.executable, handler, 3, driver.Condition.NO_SERVER, hang_limit=0.5)
    assert (run.hung, run.replies_not_continue, run.hook_seconds, run.not_run) == (1, 0, [0.5], 2)
    assert run.delivered is None and run.failures[0] == "hook 1 (UserPromptSubmit): hung, killed after 0.5 s"


def test_per_process_run_counts_deliveries_connections_and_replies(tmp_path):
    """A stand-in that sends one event and closes, and does not reply: counted by the dashboard-like server.

    (Over websocket: a polling client's ``disconnect()`` waits for the server's next ping, 30 s.)
    """
    handler = stand_in(
        tmp_path,
        """\
        import json, os, sys
        import socketio
        event = json.load(sys.stdin)
        client = socketio.Client()
        client.connect(f"http://127.0.0.1:{os.environ['CLAUDE_MPM_SOCKETIO_PORT']}", transports=["websocket"])
        client.emit("claude_event", {"type": "hook." + event["hook_event_name"]})
        client.sleep(0.2)
        client.disconnect()
    """,
    )
    run = driver.run_per_process(sys.executable, handler, 2, driver.Condition.SERVER_UP)
    assert run.delivered == {"hook.UserPromptSubmit": 1, "hook.PreToolUse": 1}
    assert (run.connections_opened, run.connections_left_open, run.hung) == (2, 0, 0)
    assert run.replies_not_continue == 2 and "no continue reply" in run.failures[0]


def test_http_posts_to_api_events_are_counted_like_socketio_events(tmp_path):
    """4.1.10+ post each event to /api/events on the port in CLAUDE_MPM_SERVER_PORT; 5.x reply {"continue": true}."""
    handler = stand_in(
        tmp_path,
        """\
        import json, os, sys, urllib.request
        event = json.load(sys.stdin)
        body = json.dumps({"type": "hook", "subtype": event["hook_event_name"].lower()}).encode()
        url = f"http://localhost:{os.environ['CLAUDE_MPM_SERVER_PORT']}/api/events"
        request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=2).close()
        print(json.dumps({"continue": True}))
    """,
    )
    launch = driver.Launch([sys.executable, str(handler)], {}, CONTINUE, handler=str(handler))
    run = driver.run_per_process(sys.executable, handler, 2, driver.Condition.SERVER_UP, launch=launch)
    assert run.delivered == {"hook.userpromptsubmit": 1, "hook.pretooluse": 1}
    assert (run.channels, run.connections_left_open, run.replies_not_continue) == ({"http": 2}, 0, 0)
    strict = driver.Launch([sys.executable, str(handler)], {}, ACTION)
    silent = driver.run_per_process(sys.executable, handler, 1, driver.Condition.NO_SERVER, launch=strict)
    assert silent.replies_not_continue == 1


@pytest.mark.parametrize(
    ("output", "contract", "accepted"),
    [
        pytest.param('{"action": "continue"}\n', ACTION, True, id="3.x-4.x"),
        pytest.param('{"continue": true}\n', ACTION, False, id="5.x reply to a 4.x contract"),
        pytest.param('{"continue": true, "tool_input": {}}\n', CONTINUE, True, id="5.x with tool_input"),
        pytest.param('{"action": "continue"}\n', CONTINUE, False, id="4.x reply to a 5.x contract"),
        pytest.param('{"async": true, "asyncTimeout": 60000}\n', "continue|async", True, id="5.x fast hook"),
        pytest.param("debug line\n", ACTION, False, id="no JSON"),
    ],
)
def test_replies_are_judged_by_the_release_contract(output, contract, accepted):
    assert driver.replies_continue(output, contract) is accepted


def test_a_hook_that_fails_is_counted_as_an_exit_error(tmp_path):
    handler = stand_in(tmp_path, "from .event_handlers import EventHandlers\n")
    run = driver.run_per_process(sys.executable, handler, 1, driver.Condition.NO_SERVER)
    assert (run.exit_errors, run.replies_not_continue) == (1, 1)
    assert run.failures[0].startswith("hook 1 (UserPromptSubmit): exit 1: ImportError: attempted relative import")


def test_wedged_server_accepts_and_never_answers():
    with driver.WedgedServer() as wedged:
        connection = socket.create_connection(("127.0.0.1", wedged.port), timeout=2)
        with connection:
            connection.sendall(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
            connection.settimeout(0.3)
            with pytest.raises(socket.timeout):
                connection.recv(1)


LONG_LIVED_STAND_IN = textwrap.dedent("""\
    import atexit, json, sys, time
    MAX_DELEGATION_TRACKING = 2
    CLEANUP_INTERVAL_EVENTS = 1

    class ClaudeHookHandler:
        def __init__(self):
            self.active_delegations = {}

        def handle(self):
            event = json.load(sys.stdin)
            self.active_delegations[event["session_id"]] = event["hook_event_name"]
            print(json.dumps({"action": "continue"}))

    _global_handler = None

    def main():
        global _global_handler
        if _global_handler is None:
            _global_handler = ClaudeHookHandler()
        _global_handler.handle()
""")


def test_long_lived_run_measures_calls_collections_and_exit(tmp_path):
    handler = stand_in(tmp_path, LONG_LIVED_STAND_IN)
    run = driver.run_long_lived(sys.executable, handler, 7, names=handler_names())
    assert (run.calls_done, run.hung_call, run.exited, run.exit_code, run.replies_not_continue) == (7, None, True, 0, 0)
    assert run.collections == {"active_delegations": {"peak": 2, "limit": 2, "limit_name": "MAX_DELEGATION_TRACKING"}}
    assert run.cleanup_interval == 1 and run.max_connections is None
    assert run.sent == {"UserPromptSubmit": 2, "PreToolUse": 2, "PostToolUse": 1, "SubagentStop": 1, "Stop": 1}


def test_long_lived_process_that_does_not_exit_is_killed(tmp_path):
    handler = stand_in(tmp_path, LONG_LIVED_STAND_IN + "\natexit.register(time.sleep, 60)\n")
    run = driver.run_long_lived(sys.executable, handler, 2, hang_limit=1.0, names=handler_names())
    assert (run.calls_done, run.hung_call, run.exited, run.exit_code) == (2, None, False, None)


def test_missing_packages_are_an_error_that_says_what_to_install(tmp_path, capsys):
    bare = tmp_path / "bare"
    venv.create(bare, with_pip=False)
    python = bare / "bin" / "python"
    code = main(
        [
            "verify",
            str(ROOT / "fixtures" / "shape-3.8" / "claude_mpm"),
            "--python",
            str(python),
            "--events",
            "1",
            "--format",
            "json",
        ]
    )
    assert code == 2
    result = json.loads(capsys.readouterr().out)["files"][0]
    assert result["status"] == "error"
    assert result["message"].endswith(
        f"install them with: {python} -m pip install python-socketio python-engineio aiohttp requests"
    )


# ---------------------------------------------------------------- what the driver may be


DRIVER_FILES = sorted(Path(driver.__file__).parent.glob("*.py"))


def test_driver_imports_only_the_standard_library_socketio_and_aiohttp():
    """It runs in the install's interpreter, which has claude-mpm's dependencies and nothing of ours:
    its modules import each other relatively, and nothing else but these."""
    imported = set()
    for path in DRIVER_FILES:
        tree = ast.parse(path.read_text())
        imported |= {
            alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        imported |= {
            node.module.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
        }
    assert len(DRIVER_FILES) > 5
    assert imported - sys.stdlib_module_names - {"__future__"} == {"socketio", "aiohttp"}


@pytest.mark.parametrize("path", DRIVER_FILES, ids=lambda path: path.name)
def test_driver_is_python_3_8(path):
    """claude-mpm supports Python 3.8, so the driver must run there."""
    ast.parse(path.read_text(), feature_version=(3, 8))


def test_driver_is_told_what_the_fixes_name():
    """The handler class, the pool, the cleanup interval and the limits come from the fixes' records, on the
    driver's command line: the driver spells none of them."""
    names = handler_names()
    assert names.handler_class == shape.HANDLER_CLASS and names.pool_attribute == shape.POOL_ATTRIBUTE
    assert names.cleanup_interval == shape.CLEANUP_INTERVAL
    assert names.size_limits == {**shape.TRACKED_COLLECTIONS, shape.GIT_CACHE[0]: None}
    spelled = [str(value) for value in (names.handler_class, names.pool_attribute, names.cleanup_interval)]
    spelled += [str(limit) for limit in names.size_limits.values() if limit] + list(names.size_limits)
    for path in DRIVER_FILES:
        text = path.read_text()
        assert [name for name in spelled if f'"{name}"' in text or f"'{name}'" in text] == [], path.name


def test_help_names_the_default_number_of_events():
    result = subprocess.run([sys.executable, "-m", "fixer", "verify", "--help"], capture_output=True, text=True)
    assert f"default: {DEFAULT_EVENTS};" in result.stdout
