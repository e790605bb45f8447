"""What a hook handler holds, as read by ``shape.inspect``: the ``Shape`` record and the names it is made of.

Standard library only and a leaf: ``layouts`` reads these records, the fixes plan from them. No fix is
named here: the marks found above each definition are recorded, and each fix decides which are its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

HANDLER_CLASS = "ClaudeHookHandler"
POOL_CLASS = "SocketIOConnectionPool"
CLEANUP_METHOD = "_cleanup_old_entries"
EVENT_COUNTER = "events_processed"
POOL_ATTRIBUTE = "connection_pool"
GLOBAL_HANDLER = "_global_handler"
# The revision of the pool this version injects: a pool of ours with a lower one is replaced
# (0.1.0's, revision 1, lost events and hung hook processes at exit).
POOL_REVISION = 2

# Unbounded collections a handler may set in __init__, with the limit that bounds each.
TRACKED_COLLECTIONS: dict[str, str] = {
    "active_delegations": "MAX_DELEGATION_TRACKING",
    "delegation_requests": "MAX_DELEGATION_TRACKING",
    "pending_prompts": "MAX_PROMPT_TRACKING",
}
GIT_CACHE = ("_git_branch_cache", "_git_branch_cache_time")
CACHE_AGE_LIMIT = "MAX_CACHE_AGE_SECONDS"
CLEANUP_INTERVAL = "CLEANUP_INTERVAL_EVENTS"

MARK_PREFIX = "fix-memory-leaks:"
# What the handler may call on its connection pool: the public methods of the pool this tool injects.
POOL_METHODS = frozenset({"get_connection", "close_all"})
# The handler's limits as claude-mpm 3.9.4-3.9.11 keep them: instance attributes set in __init__.
LIMIT_NAMES = ("MAX_DELEGATION_TRACKING", "MAX_PROMPT_TRACKING", CACHE_AGE_LIMIT, CLEANUP_INTERVAL)
REPLY_METHOD = "_continue_execution"
_MARK = re.compile(r"#\s*fix-memory-leaks:\s*([a-z][a-z-]*)")
NO_MARKS: frozenset[str] = frozenset()


class UnsupportedShape(Exception):
    """The file is Python, but not a hook handler layout this tool knows."""


def read_marks(text: str) -> frozenset[str]:
    """The fixes whose marker comment (``# fix-memory-leaks: NAME``) is in the text."""
    return frozenset(_MARK.findall(text))


def method_key(name: str) -> str:
    """The key of a handler method in ``Shape.marks_above``."""
    return f"{HANDLER_CLASS}.{name}"


class UpstreamVariant(Enum):
    """Which of claude-mpm's own fixes is in the file, told apart by structure."""

    POOL_AND_SINGLETON = "its pool and singleton"  # as seen in 3.9.4-3.9.8
    WITH_ALARM_AND_EXIT = "+ alarm, exit in main()"  # as seen in 3.9.9-3.9.11: a timeout alarm in handle()


@dataclass(frozen=True)
class UpstreamFix:
    """claude-mpm's own fix as released in 3.9.4-3.9.11, and what of it still breaks the hook in real use.

    Each field names what is left to repair; all are empty once ``apply`` has repaired it. Whether its
    pool, cleanup and ``__del__`` are still upstream's is each fix's call, from ``Shape.marks_above``.
    """

    variant: UpstreamVariant
    retrying_methods: tuple[str, ...]  # emit again through an immediate reconnection, in an except block
    exit_replies: tuple[str, ...]  # functions nested in main() that reply and sys.exit(), called or registered
    alarm_replies: tuple[str, ...]  # functions nested in handle() that reply before the except block replies again
    stdin_waits: tuple[str, ...]  # methods that select() on sys.stdin (fails for a stdin with no descriptor)
    literal_limits: tuple[str, ...]  # limits set in __init__ as numbers (not from the config)


@dataclass(frozen=True)
class Shape:
    """What a handler file holds, as far as the fixes care."""

    module_names: frozenset[str]
    marks: frozenset[str]
    # The fixes named by the mark on the line right above each top-level definition or assignment (its name),
    # and above each handler method (``method_key``): how a fix knows its own code from upstream's.
    marks_above: Mapping[str, frozenset[str]]
    init_attrs: frozenset[str]
    methods: frozenset[str]
    tracked: tuple[str, ...]
    has_git_cache: bool
    client_builders: tuple[str, ...]
    synced_getters: tuple[str, ...]
    pool_revision: int | None  # of a pool class of ours (our mark right above it), else None
    builders_without_port: tuple[str, ...]
    main_builds_handler: bool
    handle_calls_cleanup: bool
    del_closes_pool: bool
    # A module-level _global_handler that is not ours: claude-mpm's own rework (3.9.4 and later, broken or not).
    carries_upstream_rework: bool
    lines: dict[str, int]
    upstream: UpstreamFix | None = None  # claude-mpm 3.9.4-3.9.11: its own pool in this file (repaired, not left)
    layout: str = field(default="", compare=False)  # the name of its row in ``layouts.LAYOUTS``

    @property
    def has_socketio_client(self) -> bool:
        return bool(self.client_builders) or POOL_ATTRIBUTE in self.init_attrs

    @property
    def needed_limits(self) -> tuple[str, ...]:
        """The limit constants this layout's collections need, plus the interval, in a stable order."""
        names = [TRACKED_COLLECTIONS[attr] for attr in self.tracked]
        if self.has_git_cache:
            names.append(CACHE_AGE_LIMIT)
        if names:
            names.append(CLEANUP_INTERVAL)
        return tuple(dict.fromkeys(names))

    def marks_on(self, key: str) -> frozenset[str]:
        """The fixes whose mark is right above definition ``key`` (a name, or ``method_key``)."""
        return self.marks_above.get(key, NO_MARKS)
