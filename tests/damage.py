"""A model of what claude-mpm's own ``scripts/fix_memory_leaks.py`` does to a hook handler (issue 10).

Written here from the facts reported in the issue, not from that script (it is not on the package
index, and its code must not be copied here). It makes the same kinds of text edits, so it breaks
the releases the same ways: on 3.0-3.4 the result compiles but is broken (undefined names, a cleanup
that reads attributes the class never sets and is never called, ``self.sio_client`` read before
anything sets it); on 3.5-3.9.2 it ends with a SyntaxError ("unexpected indent").
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

COMPILES, UNEXPECTED_INDENT = "compiles", "unexpected-indent"

# Injected before ``class ClaudeHookHandler``: uses NetworkConfig, SOCKETIO_AVAILABLE, socketio,
# threading and time whether or not the module defines them (the script never checks).
POOL_AND_GLOBALS = '''\
class SocketIOConnectionPool:
    """Reuse Socket.IO clients instead of opening one per event."""

    def __init__(self, max_connections=3):
        self.max_connections = max_connections
        self.clients = {}
        self.opened_at = {}
        self.lock = threading.Lock()

    def get_connection(self, port):
        if not SOCKETIO_AVAILABLE:
            return None
        with self.lock:
            client = self.clients.get(port)
            if client is not None and client.connected:
                return client
            client = socketio.Client(reconnection=False)
            client.connect(f"http://localhost:{port}", wait_timeout=NetworkConfig.SOCKET_WAIT_TIMEOUT)
            self.clients[port] = client
            self.opened_at[port] = time.time()
            return client

    def close_all(self):
        with self.lock:
            for client in self.clients.values():
                client.disconnect()
            self.clients.clear()


_global_handler = None
_handler_lock = threading.Lock()


'''

# Replaces ``self.sio_client = None`` / ``self.sio_connected = False`` as they are written in __init__, and,
# as a plain text replacement, every other copy indented the same (3.5+ have one in _get_socketio_client).
INIT_ATTRIBUTES = (
    "self.connection_pool = SocketIOConnectionPool(max_connections=3)",
    "self.events_processed = 0",
    "self.last_cleanup = time.time()",
)
LIMIT_ATTRIBUTES = (
    "self.MAX_DELEGATION_TRACKING = 200",
    "self.MAX_PROMPT_TRACKING = 100",
    "self.MAX_CACHE_AGE_SECONDS = 300",
    "self.CLEANUP_INTERVAL_EVENTS = 100",
)

# Inserted before ``def handle``, and never called: reads what 3.6+ sets, whatever this release sets.
CLEANUP_METHOD = '''\
    def _cleanup_old_entries(self):
        """Drop the oldest tracking entries."""
        for storage in (self.active_delegations, self.delegation_requests):
            while len(storage) > self.MAX_DELEGATION_TRACKING:
                storage.pop(next(iter(storage)))
        while len(self.pending_prompts) > self.MAX_PROMPT_TRACKING:
            self.pending_prompts.pop(next(iter(self.pending_prompts)))
        now = time.time()
        for key, stamp in list(self._git_branch_cache_time.items()):
            if now - stamp > self.MAX_CACHE_AGE_SECONDS:
                self._git_branch_cache.pop(key, None)
                self._git_branch_cache_time.pop(key, None)

'''

# main() is rewritten only where its text is exactly this (the 3.0-3.1 form).
MAIN_TEMPLATE = "    handler = ClaudeHookHandler()\n    handler.handle()\n"
MAIN_SINGLETON = (
    "    global _global_handler\n"
    "    with _handler_lock:\n"
    "        if _global_handler is None:\n"
    "            _global_handler = ClaudeHookHandler()\n"
    "    _global_handler.handle()\n"
)

_SIO_LINES = "        self.sio_client = None\n        self.sio_connected = False\n"
_DELEGATION_REQUESTS = re.compile(r"^( +)self\.delegation_requests = \{\}\n", re.MULTILINE)
_FIRST_SELF_ASSIGNMENT = re.compile(r"^( +)self\.\w+ = .*\n", re.MULTILINE)


def natural_kind(source: bytes) -> str:
    """The kind of damage the script does to this release: 3.5+ (delegation_requests) do not parse."""
    return UNEXPECTED_INDENT if _DELEGATION_REQUESTS.search(source.decode("utf-8")) else COMPILES


def damage(source: bytes, kind: str | None = None) -> bytes:
    """``source`` as the script leaves it; ``kind`` forces the other outcome on any release."""
    kind = kind or natural_kind(source)
    text = source.decode("utf-8")
    text = text.replace("from collections import deque\n", "from collections import deque\nimport threading\n", 1)
    handler_class = re.compile(r"^class ClaudeHookHandler\b", re.MULTILINE)
    text = handler_class.sub(lambda m: POOL_AND_GLOBALS + m.group(0), text, count=1)
    text = text.replace(_SIO_LINES, _indented("        ", INIT_ATTRIBUTES + LIMIT_ATTRIBUTES))
    if kind == UNEXPECTED_INDENT:
        in_class = text.index("\nclass ClaudeHookHandler")
        anchor = _DELEGATION_REQUESTS.search(text) or _FIRST_SELF_ASSIGNMENT.search(text, in_class)
        deeper = _indented(anchor.group(1) + "    ", LIMIT_ATTRIBUTES)
        text = text[: anchor.end()] + deeper + text[anchor.end() :]
    text = re.sub(r"^    def handle\(self", lambda m: CLEANUP_METHOD + m.group(0), text, count=1, flags=re.MULTILINE)
    text = text.replace(MAIN_TEMPLATE, MAIN_SINGLETON, 1)
    return text.encode("utf-8")


def _indented(indent: str, lines) -> str:
    return "".join(f"{indent}{line}\n" for line in lines)


def run_script(handler: Path, kind: str | None = None) -> Path:
    """What a user running the script gets: the pristine ``.backup`` (never overwritten), the damaged file."""
    backup = handler.with_name(handler.name + ".backup")
    if not backup.exists():
        shutil.copy2(handler, backup)
    handler.write_bytes(damage(handler.read_bytes(), kind))
    return backup
