"""``fix-memory-leaks init``: write a commented project config holding the built-in defaults.

It writes the schema claude-mpm's own fix script writes at this path (``memory_monitoring``,
``socket_io.connection_pool``), so one file serves a project whoever wrote it. The values come from
the dataclasses that define the defaults, so the file can never drift from what a config-less run
uses; only the comments are written here.
"""

from __future__ import annotations

import textwrap
from dataclasses import fields
from pathlib import Path

from codemods.fixes.registry import FIX_NAMES
from codemods.settings import Settings

from .config import CONFIG_RELATIVE, SCHEMA, MonitorSettings

HEADER = """\
# fix-memory-leaks configuration, written by `fix-memory-leaks init`.
# Used by apply, check and monitor run in this folder or below (or pass --config FILE).
# Every value is the built-in default: change what you need; a key you delete keeps its default.
# The schema is the one claude-mpm's scripts/fix_memory_leaks.py writes here; the other keys it
# writes are accepted and have no effect:
{unused}
"""

KEY_HELP = {
    "max_delegation_tracking": "sub-agent delegations the patched handler remembers (active_delegations, "
    "delegation_requests)",
    "max_prompt_tracking": "pending prompts it remembers (pending_prompts)",
    "max_cache_age_seconds": "seconds it keeps a cached git branch",
    "cleanup_interval_events": "hook events between two clean-ups",
    "alert_threshold_mb": "`fix-memory-leaks monitor` warns above this memory (RSS, in MB) of one process",
    "interval_seconds": "seconds between two readings of `fix-memory-leaks monitor` (--interval overrides it)",
    "max_connections": "Socket.IO clients the patched handler keeps open at most, instead of one per event",
}

FIXES_HELP = """\
# Which fixes apply and check use (default: all of them); a fix pulls in what it needs.
# fixes: [{names}]
"""


class InitError(Exception):
    """The config cannot be written: it exists already, or the folder is not there."""


def default_config_text() -> str:
    """The config file: every key of the schema that does something, with its default and what it is for."""
    defaults = {field.name: field.default for kind in (Settings, MonitorSettings) for field in fields(kind)}
    unused = ", ".join(key for key, spec in SCHEMA.items() if spec.target is None)
    lines = [HEADER.format(unused=textwrap.fill(unused, width=100, initial_indent="#   ", subsequent_indent="#   "))]
    written: list[str] = []  # the sections opened so far, outermost first
    for key, spec in SCHEMA.items():
        if spec.target is None:
            continue
        *sections, name = key.split(".")
        common = 0  # how many of the sections this key is in are open already
        while common < min(len(written), len(sections)) and written[common] == sections[common]:
            common += 1
        if common == 0:
            lines.append("\n")
        for depth in range(common, len(sections)):
            lines.append(f"{'  ' * depth}{sections[depth]}:\n")
        written = sections
        indent = "  " * len(sections)
        lines.append(f"{indent}# {KEY_HELP[spec.target]}\n{indent}{name}: {defaults[spec.target]:g}\n")
    lines.append("\n" + FIXES_HELP.format(names=", ".join(FIX_NAMES)))
    return "".join(lines)


def write_default_config(folder: Path) -> Path:
    """Create ``folder/.claude-mpm/memory_config.yaml``; never overwrite one that exists."""
    if not folder.is_dir():
        raise InitError(f"{folder}: no such folder (give the project folder, or run init inside it)")
    target = folder / CONFIG_RELATIVE
    try:
        target.parent.mkdir(exist_ok=True)
        with open(target, "x", encoding="utf-8") as stream:
            stream.write(default_config_text())
    except FileExistsError:
        raise InitError(f"{target}: already exists; edit it, or delete it first to start from the defaults") from None
    except OSError as error:
        raise InitError(f"{target}: cannot write the config: {error.strerror or error}") from None
    return target
