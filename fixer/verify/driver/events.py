"""The hook events, as Claude Code sends them, and what the hooks find around them (projects, ``claude``)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

TURN = ("UserPromptSubmit", "PreToolUse", "PostToolUse", "SubagentStop", "Stop")
AGENTS = ("research", "engineer", "qa", "documentation", "ops")
# Claude Code starts the hook, so `claude` is on its PATH; 4.1.x hooks run `claude --version` and
# report nothing below 1.0.92. Where verify finds no `claude`, a stand-in answers with this version.
STAND_IN_CLAUDE_VERSION = "2.0.0 (Claude Code)"


def hook_events(count: int, cwds: list[str]) -> Iterator[dict]:
    """``count`` hook events as Claude Code sends them, one turn after another.

    A turn is a prompt, a Task delegation to a subagent, the tool's result, the subagent's
    stop and the main agent's stop; every turn has a new session id and agent, and the
    projects (``cwds``) take turns, so the handler's per-session state sees many keys.
    """
    for index in range(count):
        turn, step = divmod(index, len(TURN))
        kind = TURN[step]
        session = f"soak-session-{turn:06d}"
        cwd = cwds[turn % len(cwds)]
        agent = AGENTS[turn % len(AGENTS)]
        event: dict[str, object] = {
            "hook_event_name": kind,
            "session_id": session,
            "cwd": cwd,
            "transcript_path": f"{cwd}/.claude/{session}.jsonl",
        }
        task = {
            "subagent_type": agent,
            "description": f"turn {turn}",
            "prompt": f"Investigate failing test number {turn} and report back.",
        }
        if kind == "UserPromptSubmit":
            event["prompt"] = f"Please fix bug #{turn}; the build is broken."
        elif kind in ("PreToolUse", "PostToolUse"):
            event.update(tool_name="Task", tool_input=task)
            if kind == "PostToolUse":
                event.update(tool_response={"content": f"{agent} finished turn {turn}"}, exit_code=0)
        else:
            event.update(stop_hook_active=False, reason="completed")
        yield event


@contextlib.contextmanager
def claude_code_on_path() -> Iterator[str]:
    """Yields what answers ``claude --version`` for the hooks: the user's own Claude Code, or a stand-in
    (a script on PATH, for the time of the block) where there is none."""
    import shutil

    found = shutil.which("claude")
    if found is not None:
        yield found
        return
    with tempfile.TemporaryDirectory(prefix="verify-claude-") as folder:
        stand_in = Path(folder) / "claude"
        stand_in.write_text(f"#!/bin/sh\necho '{STAND_IN_CLAUDE_VERSION}'\n")
        stand_in.chmod(0o755)
        saved = os.environ.get("PATH", "")
        os.environ["PATH"] = folder + os.pathsep + saved
        try:
            yield f"stand-in ({STAND_IN_CLAUDE_VERSION})"
        finally:
            os.environ["PATH"] = saved


def claude_code_json(event: dict) -> str:
    """The event as Claude Code writes it on the hook's stdin: compact JSON (5.x's fast hook parses it so)."""
    return json.dumps(event, separators=(",", ":"))


@contextlib.contextmanager
def project_folders(count: int = 3) -> Iterator[list[str]]:
    """Throwaway project folders for the events' ``cwd`` (the handler looks up their git branch)."""
    with tempfile.TemporaryDirectory(prefix="verify-projects-") as root:
        cwds = [os.path.join(root, f"project-{n}") for n in range(count)]
        for cwd in cwds:
            os.mkdir(cwd)
        yield cwds
