"""How each release runs its hook, read from its own wheel (``fixer.verify.hooks``).

The wheels are the real ones (``bench.corpus``, downloaded once); nothing of their code is
copied here. What is asserted is what each release's wrapper and installer say, as listed in
issue 17: by path in 3.x, ``-m`` from 4.0.11, ``claude-hook-handler.sh`` from 4.1.10, the
fast shell hook in 5.x, and each release's reply.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench import corpus
from fixer.install.model import Target
from fixer.verify.driver import Reply
from fixer.verify.hooks import (
    exported,
    hard_codes_port,
    hook_run,
    invocation,
    reply_contract,
)

MODULE = "claude_mpm.hooks.claude_hooks.hook_handler"


def run_of(version: str, required, command: str | None = None):
    folder = required(corpus.unpacked, version)
    return hook_run(Target(folder / corpus.HANDLER_IN_WHEEL, sys.executable, origin="test", command=command))


@pytest.mark.parametrize(
    ("version", "how", "module", "reply", "environment"),
    [
        pytest.param("3.9.4", "python hook_handler.py (as hook_wrapper.sh", None, "action", "3.x", id="3.9.4"),
        pytest.param("4.0.4", "python hook_handler.py (as hook_wrapper.sh", None, "action", "3.x", id="4.0.4"),
        pytest.param("4.0.20", f"python -m {MODULE} (as hook_wrapper.sh", MODULE, "action", "3.x", id="4.0.20"),
        pytest.param("4.1.10", f"python -m {MODULE} (as claude-hook-handler.sh", MODULE, "action", "port", id="4.1.10"),
        pytest.param("5.9.10", "bash claude-hook-fast.sh", None, "continue|async", "none", id="5.9.10"),
    ],
)
def test_each_release_is_run_as_its_wrapper_runs_it(version, how, module, reply, environment, required):
    run = run_of(version, required)
    assert run.how.startswith(how), run.how
    assert (run.launch.module, run.launch.reply) == (module, reply)
    assert (
        run.launch.environment
        == {
            "3.x": {"CLAUDE_MPM_SOCKETIO_PORT": "8765", "CLAUDE_MPM_HOOK_DEBUG": "true"},
            "port": {"CLAUDE_MPM_SOCKETIO_PORT": "8765"},
            "none": {},
        }[environment]
    )
    assert run.has_dashboard


def test_by_path_runs_the_installed_file_and_minus_m_runs_the_module(required):
    by_path, by_module = run_of("3.9.4", required), run_of("4.0.20", required)
    assert by_path.launch.command == [sys.executable, by_path.launch.handler]
    assert Path(by_path.launch.handler).name == "hook_handler.py"
    assert by_module.launch.command == [sys.executable, "-m", MODULE] and by_module.launch.handler is None


def test_a_registered_command_wins_over_the_installers_default(required):
    folder = required(corpus.unpacked, "5.9.10")
    script = folder / "claude_mpm" / "scripts" / "claude-hook-handler.sh"
    run = run_of("5.9.10", required, command=str(script))
    assert run.how.startswith(f"python -W ignore::RuntimeWarning -m {MODULE} (as claude-hook-handler.sh")
    assert run.launch.reply == "continue"


def test_releases_that_reach_8765_whatever_their_environment_says_are_told_apart(required):
    assert not run_of("3.9.4", required).hard_coded_port  # CLAUDE_MPM_SOCKETIO_PORT, default 8765
    assert run_of("4.1.10", required).hard_coded_port  # port discovery and pool ranges name 8765 itself


@pytest.mark.parametrize(
    ("text", "hard"),
    [
        pytest.param('port = int(os.environ.get("CLAUDE_MPM_SERVER_PORT", "8765"))', False, id="env default"),
        pytest.param('export CLAUDE_MPM_SOCKETIO_PORT="8765"', False, id="wrapper export"),
        pytest.param('PORT="${CLAUDE_MPM_SOCKETIO_PORT:-8765}"', False, id="shell default"),
        pytest.param('requests.post("http://localhost:8765/api/events")', True, id="url"),
        pytest.param("# the dashboard listens on 8765", False, id="comment"),
    ],
)
def test_hard_coded_port(text, hard):
    assert hard_codes_port(text) is hard


def test_wrapper_lines_are_read_not_guessed():
    wrapper = """\
export CLAUDE_MPM_SOCKETIO_PORT="8765"
if [ -n "$DEBUG" ]; then
    export CLAUDE_MPM_LOG_LEVEL="DEBUG"
fi
export PYTHONPATH="$ROOT/src:$PYTHONPATH"
if ! "$PYTHON_CMD" -m some.module "$@" 2>/tmp/x.log; then
    echo '{"action": "continue"}'
fi
"""
    assert exported(wrapper) == {"CLAUDE_MPM_SOCKETIO_PORT": "8765"}
    assert invocation(wrapper) == ["-m", "some.module"]
    assert reply_contract(wrapper) == Reply.ACTION.value
    assert reply_contract("# echo '{\"continue\": true}'\n", 'print(json.dumps({"continue": True}))') == "continue"


def test_the_entry_point_is_run_as_its_console_script_would_be(required):
    run = run_of("5.9.10", required, command="claude-hook")
    assert run.how == f"the claude-hook entry point ({MODULE}:main)"
    assert run.launch.command[1:] == ["-c", f"import sys; from {MODULE} import main; sys.exit(main())"]
    assert (run.launch.module, run.launch.reply, run.notes) == (MODULE, "continue", [])


def test_a_registered_command_this_tool_cannot_run_is_said_not_hidden(required):
    run = run_of("4.1.10", required, command="/usr/local/bin/some-other-hook --flag")
    assert run.notes == [
        "the registered command '/usr/local/bin/some-other-hook --flag' is not a hook this tool can run: "
        "ran claude-hook-handler.sh"
    ]
