"""``fix-memory-leaks init``: write a commented project config holding the built-in defaults.

The values come from the dataclasses that define the defaults, so the file can never drift
from what a config-less run uses; only the comments are written here.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from codemods.registry import FIX_NAMES
from codemods.settings import Settings

from .config import CONFIG_RELATIVE, SCHEMA, MonitorSettings

HEADER = """\
# fix-memory-leaks configuration, written by `fix-memory-leaks init`.
# Used by apply, check and monitor run in this folder or below (or pass --config FILE).
# Every value is the built-in default: change what you need; a key you delete keeps its default.
"""

SECTION_HELP = {
    "limits": "What the patched hook handler keeps in memory before it trims the oldest entries.",
    "connection_pool": "The Socket.IO clients the patched handler reuses instead of opening one per event.",
    "monitor": "What `fix-memory-leaks monitor` warns about.",
}

KEY_HELP = {
    "max_delegation_tracking": "sub-agent delegations remembered (active_delegations, delegation_requests)",
    "max_prompt_tracking": "pending prompts remembered (pending_prompts)",
    "max_cache_age_seconds": "seconds a cached git branch is kept",
    "cleanup_interval_events": "hook events between two clean-ups",
    "max_connections": "Socket.IO clients kept open at most",
    "warn_rss_mb": "warn when a claude-mpm or hook-handler process uses more memory (RSS) than this, in MB",
}

FIXES_HELP = """\
# Which fixes apply and check use (default: all of them); a fix pulls in what it needs.
# fixes: [{names}]
"""


class InitError(Exception):
    """The config cannot be written: it exists already, or the folder is not there."""


def default_config_text() -> str:
    """The config file: every key of the schema with its default value and what it is for."""
    defaults = {field.name: field.default for kind in (Settings, MonitorSettings) for field in fields(kind)}
    sections = [
        f"# {SECTION_HELP[section]}\n{section}:\n"
        + "".join(f"  # {KEY_HELP[key]}\n  {key}: {defaults[key]}\n" for key in keys)
        for section, keys in SCHEMA.items()
    ]
    return "\n".join([HEADER, *sections, FIXES_HELP.format(names=", ".join(FIX_NAMES))])


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
