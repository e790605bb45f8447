"""``fix-memory-leaks monitor`` against real processes this test starts: a fake hook handler that
holds memory, and grows when told to."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixer.cli import main
from fixer.monitor import CLAUDE_MPM, HOOK_HANDLER, MB, Monitor, process_kind
from tests.terminal import ROOT, read_terminal, spawn_on_terminal

HUNGRY = """
import sys
held = [b"x" * (40 * 2**20)]
print("ready", flush=True)
sys.stdin.readline()
held.append(b"y" * (60 * 2**20))
print("grown", flush=True)
sys.stdin.readline()
"""


class Hungry:
    """A Python script run under a hook handler's (or claude-mpm's) name, holding 40 MB."""

    def __init__(self, script: Path, *argv: str) -> None:
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(HUNGRY)
        self.process = subprocess.Popen(
            [sys.executable, str(script), *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout.readline().strip() == "ready"
        self.pid = self.process.pid

    def grow(self) -> None:
        """Allocate 60 MB more and wait until it is held."""
        self.process.stdin.write("grow\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "grown"

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def hook_handler(tmp_path):
    child = Hungry(tmp_path / "claude_mpm" / "hooks" / "claude_hooks" / "hook_handler.py")
    yield child
    child.stop()


@pytest.fixture
def claude_mpm(tmp_path):
    child = Hungry(tmp_path / "bin" / "claude-mpm", "run")
    yield child
    child.stop()


def table(stdout: str):
    """The plain table as {pid: {column: value}}, read by its header as a script would."""
    lines = stdout.splitlines()
    header_at = [i for i, line in enumerate(lines) if line.startswith("PID ")]
    rows = {}
    for start in header_at:
        header = lines[start].split()
        for line in lines[start + 1 :]:
            if not line[:1].isdigit():
                break
            cells = line.split(None, len(header) - 1)
            rows[int(cells[0])] = dict(zip(header, cells))
    return rows


@pytest.mark.parametrize(
    ("argv", "kind"),
    [
        (["python3", "/x/claude_mpm/hooks/claude_hooks/hook_handler.py"], HOOK_HANDLER),
        (["/venv/bin/python3.11", "-u", "-X", "dev", "/x/hook_handler.py", "--debug"], HOOK_HANDLER),
        (["python3", "-m", "claude_mpm.hooks.claude_hooks.hook_handler"], HOOK_HANDLER),
        (["/usr/bin/python3", "/home/me/.local/bin/claude-mpm", "run"], CLAUDE_MPM),
        (["/home/me/.local/bin/claude-mpm", "run"], CLAUDE_MPM),
        (["python", "-m", "claude_mpm", "run"], CLAUDE_MPM),
        (["python", "-m", "http.server"], None),
        (["python", "-c", "print('hook_handler.py')", "claude-mpm"], None),
        (["vim", "/x/claude_mpm/hooks/claude_hooks/hook_handler.py"], None),
        (["/venv/bin/python", "/venv/bin/fix-memory-leaks", "check", "/x/hooks/claude_hooks/hook_handler.py"], None),
        ([], None),
    ],
)
def test_process_kind_reads_the_command_line(argv, kind):
    assert process_kind(argv) == kind


def test_a_sample_finds_the_processes_with_their_memory(hook_handler, claude_mpm):
    samples = {sample.pid: sample for sample in Monitor().sample()}
    assert samples[hook_handler.pid].kind == HOOK_HANDLER
    assert samples[claude_mpm.pid].kind == CLAUDE_MPM
    for child in (hook_handler, claude_mpm):
        assert samples[child.pid].rss >= 40 * MB
        assert samples[child.pid].growth == 0
        assert "hook_handler.py" in samples[hook_handler.pid].command


def test_growth_is_counted_from_the_first_sample(hook_handler):
    monitor = Monitor()
    before = {sample.pid: sample for sample in monitor.sample()}[hook_handler.pid]
    hook_handler.grow()
    after = {sample.pid: sample for sample in monitor.sample()}[hook_handler.pid]
    assert after.growth == after.rss - before.rss
    assert after.growth >= 55 * MB


def test_a_finished_process_drops_out(hook_handler):
    monitor = Monitor()
    assert hook_handler.pid in {sample.pid for sample in monitor.sample()}
    hook_handler.stop()
    assert hook_handler.pid not in {sample.pid for sample in monitor.sample()}


# ---------------------------------------------------------------- monitor --once


def test_once_exits_1_when_a_process_is_above_the_threshold(capsys, hook_handler):
    code = main(["monitor", "--once", "--threshold-mb", "30"])
    out = capsys.readouterr().out
    row = table(out)[hook_handler.pid]
    assert code == 1
    assert row["KIND"] == HOOK_HANDLER and row["STATUS"] == "high"
    assert float(row["RSS_MB"]) >= 40 and "GROWTH_MB" not in row
    assert out.splitlines()[-1].startswith("summary: ") and "WARNING" in out and "above 30 MB" in out
    assert "\x1b[" not in out  # plain when piped


def test_once_exits_0_below_the_threshold(capsys, hook_handler):
    code = main(["monitor", "--once", "--threshold-mb", "100000"])
    out = capsys.readouterr().out
    assert code == 0
    assert table(out)[hook_handler.pid]["STATUS"] == "ok"
    assert "all below 100000 MB" in out


def test_once_takes_the_threshold_from_the_config(capsys, tmp_path, hook_handler):
    config = tmp_path / "memory.yaml"
    config.write_text("monitor:\n  warn_rss_mb: 30\n")
    assert main(["monitor", "--once", "--config", str(config)]) == 1
    assert table(capsys.readouterr().out)[hook_handler.pid]["STATUS"] == "high"
    assert main(["monitor", "--once", "--config", str(config), "--threshold-mb", "100000"]) == 0


def test_once_does_not_list_itself(tmp_path):
    """The monitor's own command line may match (here it does); it never reports itself."""
    script = tmp_path / "hook_handler.py"
    script.write_text(
        f"import os, sys; sys.path.insert(0, {str(ROOT)!r}); from fixer.cli import main; "
        "print(os.getpid(), file=sys.stderr); sys.exit(main(['monitor', '--once', '--threshold-mb', '100000']))"
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert int(result.stderr.strip()) not in table(result.stdout)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--threshold-mb", "0"], "--threshold-mb must be positive"),
        (["--interval", "0"], "--interval must be a positive number"),
        (["--interval", "nan"], "--interval must be a positive number"),
        (["--interval", "inf"], "--interval must be a positive number"),
        (["--config", "/nonexistent/memory.yaml"], "cannot read the config"),
    ],
)
def test_bad_options_are_one_line_errors(capsys, argv, expected):
    assert main(["monitor", "--once", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err


# ---------------------------------------------------------------- the watching loop


def _interrupt(process) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=20)


def test_piped_monitor_logs_a_reading_per_interval_with_growth(hook_handler):
    monitor = subprocess.Popen(
        [sys.executable, "-m", "fixer", "monitor", "--interval", "0.2", "--threshold-mb", "100000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    fd = monitor.stdout.fileno()
    try:
        seen = read_terminal(fd, lambda text: hook_handler.pid in table(text), timeout=30)
        assert hook_handler.pid in table(seen), seen
        hook_handler.grow()

        def grown(text: str) -> bool:
            row = table(text).get(hook_handler.pid)
            return bool(row) and float(row["GROWTH_MB"]) >= 55

        seen += read_terminal(fd, lambda text: grown(seen + text), timeout=30)
        assert grown(seen), seen
    finally:
        code = _interrupt(monitor)
    assert code == 0
    assert seen.startswith("time: ") and seen.count("\ntime: ") >= 1 and "\nsummary: " in seen  # two readings
    assert b"Traceback" not in monitor.stderr.read()


def test_live_view_on_a_terminal_warns_and_stops_cleanly_on_ctrl_c(hook_handler):
    process, fd = spawn_on_terminal(["monitor", "--interval", "0.3", "--threshold-mb", "30"])
    try:
        shown = read_terminal(fd, lambda text: str(hook_handler.pid) in text and "Ctrl+C" in text, timeout=30)
        time.sleep(0.5)  # let it refresh at least once
        code = _interrupt(process)
        shown += read_terminal(fd, lambda _: False, timeout=2)
    finally:
        os.close(fd)
    assert code == 0
    assert str(hook_handler.pid) in shown and "WARNING" in shown and "above 30 MB" in shown
    assert "\x1b[" in shown  # a live, coloured view
    assert "Traceback" not in shown
