"""Run a claude-mpm hook handler the way claude-mpm does, against a real Socket.IO server, and measure it.

This is the driver of ``fix-memory-leaks verify``. It runs inside the interpreter of the
install being verified, because the handler needs that install's claude_mpm and
python-socketio, and so does the server that stands in for claude-mpm's dashboard::

    PYTHON driver.py HOOK_HANDLER_PY [--events N] [--hang-limit S] [--launch JSON] [--netns]

prints one JSON object on stdout (progress lines go to stderr). So it imports nothing but
the standard library, python-socketio and aiohttp, and stays valid on Python 3.8, which
claude-mpm supports. The in-process soak harness (``bench.soak_harness``) and the benchmarks use its
server and hook events too, so every measurement is made the same way.

Two runs, as claude-mpm has two ways to call the handler:

- per process (:func:`run_per_process`): what the release's wrapper does for every hook event
  (a :class:`Launch`: ``python hook_handler.py`` in 3.x, ``python -m ...`` from 4.0.11, a shell
  hook in 5.x), one JSON event on stdin and the wrapper's environment set, the reply read from
  stdout, one process after another; with the server up, with no server listening, or with a
  wedged server (a TCP listener that never answers).
- long-lived (:func:`run_long_lived`): one process that calls ``main()`` N times, watched
  from outside, so that a call or the process exit that hangs can be killed and reported.

The server stands in for every dashboard claude-mpm has shipped: Socket.IO ``claude_event``
(3.x, 4.0) and HTTP ``POST /api/events`` (4.1.3 and later). With ``--netns`` the driver runs
in a private network namespace (``unshare -rn``): it brings up its own loopback and serves on
the release's own port (8765), so a hook that hard-codes it reaches this server and nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import io
import itertools
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Callable

# Claude Code's reply contract, as each release's wrapper and handler write it: {"action": "continue"}
# in 3.x and 4.x, {"continue": true} (more keys allowed) in 5.x, {"async": true, ...} from 5.x's
# fast hook. A release's contract is one of these or several joined by "|".
REPLY_ACTION, REPLY_CONTINUE, REPLY_ASYNC = "action", "continue", "async"
CONTINUE = {"action": "continue"}
# The environment claude-mpm's hook_wrapper.sh sets for the handler (its port is replaced by the
# server's). A release whose wrapper exports other values has them read from it (fixer.verify.hooks).
HOOK_ENVIRONMENT = {"CLAUDE_MPM_SOCKETIO_PORT": "8765", "CLAUDE_MPM_HOOK_DEBUG": "true"}
# Where releases read their dashboard's port: Socket.IO (3.x, 4.0) and HTTP (4.1.3 and later).
PORT_VARIABLES = ("CLAUDE_MPM_SOCKETIO_PORT", "CLAUDE_MPM_SERVER_PORT")
DASHBOARD_PORT = 8765  # every release's default, hard-coded in some
EVENTS_PATH = "/api/events"
# Claude Code starts the hook, so `claude` is on its PATH; 4.1.x hooks run `claude --version` and
# report nothing below 1.0.92. Where verify finds no `claude`, a stand-in answers with this version.
STAND_IN_CLAUDE_VERSION = "2.0.0 (Claude Code)"
SOCKETIO, HTTP = "socketio", "http"
TURN = ("UserPromptSubmit", "PreToolUse", "PostToolUse", "SubagentStop", "Stop")
AGENTS = ("research", "engineer", "qa", "documentation", "ops")
# claude-mpm's dashboard (services/socketio_server.py) runs its server with these.
DASHBOARD_PING_INTERVAL = 30
DASHBOARD_PING_TIMEOUT = 120
HANG_LIMIT_SECONDS = 10.0  # a hook process (or a long-lived call, or its exit) still running after this hung
SETTLE_SECONDS = 2.0  # the most a run waits at its end for late events and closing connections
QUIET_SECONDS = 0.25  # no new event for this long: the clients' send queues are drained
# Small enough that a pre-fix handler whose every hook hangs (killed at the hang limit) is still
# verified in about two minutes: 8 x 10 s per process, plus the no-server and long-lived runs.
DEFAULT_EVENTS = 8
SERVER_UP, NO_SERVER, WEDGED = "server_up", "no_server", "wedged"
CONDITIONS = (SERVER_UP, NO_SERVER, WEDGED)
WEDGED_EVENTS = 3  # hooks against a server that never answers: their time is reported, not judged
# What the long-lived run measures on the handler. The names are codemods.reading.shape's (a test
# keeps them equal); they are spelled out here because this file imports nothing of ours.
HANDLER_CLASS = "ClaudeHookHandler"
SIZE_LIMITS = {  # collection -> the constant that limits its size (None: bounded by age only)
    "active_delegations": "MAX_DELEGATION_TRACKING",
    "delegation_requests": "MAX_DELEGATION_TRACKING",
    "pending_prompts": "MAX_PROMPT_TRACKING",
    "_git_branch_cache": None,
}
CLEANUP_INTERVAL = "CLEANUP_INTERVAL_EVENTS"
POOL_ATTRIBUTE = "connection_pool"
# The server needs python-socketio and aiohttp; the handler's client needs requests as well, for the
# long-polling handshake every connection starts with (claude-mpm depends on all of them).
REQUIRED_MODULES = {
    "socketio": "python-socketio",
    "engineio": "python-engineio",
    "aiohttp": "aiohttp",
    "requests": "requests",
}
PROGRESS_PREFIX = "verify-progress "
FAILURE_EXAMPLES = 5


# -- the server -------------------------------------------------------------------------------


class SocketIOServer:
    """A dashboard like claude-mpm's: python-socketio on aiohttp, plus ``POST /api/events``.

    It listens on 127.0.0.1 (a free port, or ``port``), runs in a thread with its own event
    loop and counts what the hook's clients do: connections open now, the most open at once,
    every connection ever opened (Socket.IO sessions and HTTP connections alike), and the
    events received, by type and by channel (Socket.IO ``claude_event`` or HTTP post).
    """

    def __init__(self, port: int = 0) -> None:
        self._lock = threading.Lock()
        self.open = 0
        self.peak = 0
        self.opened = 0
        self.received: Counter = Counter()
        self.transports: Counter = Counter()  # the transport each claude_event came over
        self.channels: Counter = Counter()  # socketio / http -> events received that way
        self._http_connections: dict[int, asyncio.BaseTransport] = {}
        self.port = port  # the real one once started
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="socketio-server", daemon=True)

    def __enter__(self) -> SocketIOServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the Socket.IO server did not start within 10 s")
        if self._failure is not None:
            raise RuntimeError(f"the Socket.IO server did not start: {self._failure}") from self._failure
        return self

    def __exit__(self, *exc_info) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if self._thread.is_alive():
            raise RuntimeError("the Socket.IO server did not stop within 10 s")

    @property
    def delivered(self) -> int:
        with self._lock:
            return sum(self.received.values())

    def received_by_type(self) -> Counter:
        with self._lock:
            return Counter(self.received)

    def wait_until(self, condition: Callable[[], bool], timeout: float = SETTLE_SECONDS) -> None:
        """Poll ``condition`` until it holds or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)

    def wait_until_quiet(self, quiet: float = QUIET_SECONDS, timeout: float = SETTLE_SECONDS) -> None:
        """Return once no event has arrived for ``quiet`` seconds (delivery is asynchronous), or at ``timeout``."""
        deadline = time.monotonic() + timeout
        seen, since = self.delivered, time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.01)
            now_seen = self.delivered
            if now_seen != seen:
                seen, since = now_seen, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return

    def settle(self, timeout: float = SETTLE_SECONDS) -> None:
        """After a run: let late events arrive and closing connections close, within ``timeout`` in all."""
        started = time.monotonic()
        self.wait_until_quiet(timeout=timeout)
        self.wait_until(lambda: self.open_now() == 0, max(timeout - (time.monotonic() - started), 0.0))

    def _serve(self) -> None:
        import socketio  # type: ignore[import-untyped]  # python-socketio ships no type information
        from aiohttp import web

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        sio = socketio.AsyncServer(
            async_mode="aiohttp",
            ping_interval=DASHBOARD_PING_INTERVAL,
            ping_timeout=DASHBOARD_PING_TIMEOUT,
            logger=False,
            engineio_logger=False,
        )
        sio.on("connect", self._on_connect)
        sio.on("disconnect", self._on_disconnect)
        sio.on("claude_event", self._on_claude_event)
        self._sio = sio
        app = web.Application()
        sio.attach(app)
        app.router.add_post(EVENTS_PATH, self._on_http_event)
        # Clients still connected at stop must not hold the shutdown for aiohttp's default 60 s.
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
            loop.run_until_complete(site.start())
            self.port = runner.addresses[0][1]
        except BaseException as error:  # reported to the starting thread
            self._failure = error
            self._ready.set()
            loop.close()
            return
        self._loop = loop
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._shutdown(sio, runner))
            loop.close()

    @staticmethod
    async def _shutdown(sio, runner) -> None:
        await sio.shutdown()
        await runner.cleanup()
        # Ping tasks of sockets that were still open would be destroyed pending otherwise.
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _on_connect(self, sid, environ, auth=None) -> None:
        with self._lock:
            self.open += 1
            self.opened += 1
            self.peak = max(self.peak, self.open)

    async def _on_disconnect(self, sid, *reason) -> None:
        with self._lock:
            self.open -= 1

    async def _on_claude_event(self, sid, data) -> None:
        transport = self._sio.transport(sid)
        with self._lock:
            self.received[event_type(data)] += 1
            self.transports[transport] += 1
            self.channels[SOCKETIO] += 1

    async def _on_http_event(self, request):
        from aiohttp import web

        connection = request.transport
        with self._lock:
            if connection is not None and id(connection) not in self._http_connections:
                self._http_connections[id(connection)] = connection
                self.opened += 1
        try:
            data = await request.json()
        except ValueError:
            data = None
        with self._lock:
            self.received[event_type(data)] += 1
            self.channels[HTTP] += 1
        return web.Response(status=204)

    def open_now(self) -> int:
        """Socket.IO sessions and HTTP connections still open."""
        with self._lock:
            http = sum(1 for connection in self._http_connections.values() if not connection.is_closing())
            return self.open + http


def event_type(data) -> str:
    """The name an event is counted under: ``hook.pre_tool`` whether it came as 3.x's Socket.IO
    ``{"type": "hook.pre_tool"}`` or as an HTTP post ``{"type": "hook", "subtype": "pre_tool"}``
    (possibly wrapped: ``{"event": "claude_event", "data": {...}}``)."""
    if not isinstance(data, dict):
        return "?"
    if "type" not in data and isinstance(data.get("data"), dict):
        data = data["data"]
    kind, subtype = str(data.get("type", "?")), data.get("subtype")
    return f"{kind}.{subtype}" if subtype and "." not in kind else kind


class WedgedServer:
    """A dashboard that hangs: a TCP listener on 127.0.0.1 that accepts connections and never answers."""

    def __init__(self, port: int = 0) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="wedged-server", daemon=True)
        self.port = port  # the real one once started

    def __enter__(self) -> WedgedServer:
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", self.port))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        with contextlib.suppress(OSError):  # wakes the accepting thread; close() alone leaves the port bound
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(5)
        for connection in self._accepted:
            connection.close()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):  # the listener was closed
            while True:
                self._accepted.append(self._listener.accept()[0])


@contextlib.contextmanager
def nothing_listening(port: int = 0) -> Iterator[int]:
    """A 127.0.0.1 port held (bound, not listening) for the time of the block: connecting is refused.

    Holding it means nothing else can start listening there meanwhile: no dashboard at all.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", port))
        yield holder.getsockname()[1]


def loopback_up() -> None:
    """Bring up ``lo`` in a fresh network namespace (``unshare -rn`` leaves it down)."""
    import fcntl
    import struct

    get_flags, set_flags, up = 0x8913, 0x8914, 0x1  # SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(control, get_flags, request))[1]
        fcntl.ioctl(control, set_flags, struct.pack("16sh", b"lo", flags | up))


# -- the hook events --------------------------------------------------------------------------


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


def wrapper_variables(port: int, hook_environment: dict[str, str] | None = None) -> dict[str, str]:
    """The variables the wrapper sets for the hook, its port variables on ``port``: the one definition that
    verify, the soak and the tests lay over their own environment."""
    variables = dict(HOOK_ENVIRONMENT if hook_environment is None else hook_environment)
    variables.update(dict.fromkeys(PORT_VARIABLES, str(port)))
    return variables


def wrapper_environment(port: int, hook_environment: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the wrapper gives the hook, its port variables on ``port`` (the rest, PYTHONPATH
    included, is ours)."""
    return dict(os.environ, **wrapper_variables(port, hook_environment))


@dataclass
class Launch:
    """How the release's wrapper runs its hook for one event, and what it must reply.

    ``command`` is the process to start (``python hook_handler.py``, ``python -m module``, a
    shell hook, an entry point); ``module``/``handler`` say what the long-lived run imports
    (neither: a shell hook, no long-lived run); ``port`` is the dashboard port the hooks use
    (0: a free one, passed in the port variables).
    """

    command: list[str]
    environment: dict[str, str] = field(default_factory=lambda: dict(HOOK_ENVIRONMENT))
    reply: str = REPLY_ACTION
    module: str | None = None
    handler: str | None = None
    function: str = "main"
    port: int = 0

    @classmethod
    def by_path(cls, python: str, handler: Path) -> Launch:
        """3.x's ``hook_wrapper.sh``: ``python hook_handler.py``."""
        return cls([python, str(handler)], handler=str(handler))

    @classmethod
    def from_json(cls, text: str) -> Launch:
        return cls(**json.loads(text))

    def as_json(self) -> dict:
        return asdict(self)


# -- calling the handler in this process ------------------------------------------------------

_module_ids = itertools.count()


def import_handler(path: Path) -> ModuleType:
    """Import the handler file as a fresh module (unique name, not put in ``sys.modules``).

    3.4.x handlers add a folder relative to their own file to ``sys.path``, which is undone
    afterwards.
    """
    spec = importlib.util.spec_from_file_location(f"verified_hook_handler_{next(_module_ids)}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: not importable as a Python module")
    module = importlib.util.module_from_spec(spec)
    saved_path = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved_path
    return module


def call_hook(
    module: ModuleType, event: dict, reply: str = REPLY_ACTION, function: str = "main", real_stdin: bool = False
) -> tuple[bool, str | None]:
    """One hook call as Claude Code makes it: did it reply "continue", and why it failed, if it did.

    With ``real_stdin`` the event is on file descriptor 0 (a pipe), for handlers that ``select()``
    on stdin before reading it (4.1 and later); otherwise ``sys.stdin`` is a string buffer.
    """
    stdout, saved_stdin = io.StringIO(), sys.stdin
    saved_descriptor = os.dup(0) if real_stdin else None
    if real_stdin:
        reading, writing = os.pipe()
        os.write(writing, claude_code_json(event).encode())
        os.close(writing)
        os.dup2(reading, 0)
        os.close(reading)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115  # closed by the restore below
    else:
        sys.stdin = io.StringIO(claude_code_json(event))
    failure = None
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
            getattr(module, function)()
    except SystemExit as exit_:  # some handlers end with sys.exit(0)
        if exit_.code not in (None, 0):
            failure = f"exit {exit_.code}"
    except Exception as error:
        failure = f"raised {error!r}"
    finally:
        sys.stdin.close()
        sys.stdin = saved_stdin
        if saved_descriptor is not None:
            os.dup2(saved_descriptor, 0)
            os.close(saved_descriptor)
    replied = replies_continue(stdout.getvalue(), reply)
    if failure is None and not replied:
        failure = f"no continue reply in {stdout.getvalue()[:200]!r}"
    return replied, failure


def replies_continue(output: str, reply: str = REPLY_ACTION) -> bool:
    """Does the hook's stdout hold the continue reply of the release's contract (``reply``)?

    ``{"action": "continue"}`` exactly (3.x, 4.x), an object whose ``continue`` is true (5.x,
    which may add keys such as ``tool_input``), or one whose ``async`` is true (5.x's fast hook).
    """
    accepted = reply.split("|")
    for line in output.splitlines():
        with contextlib.suppress(ValueError):
            answer = json.loads(line)
            if REPLY_ACTION in accepted and answer == CONTINUE:
                return True
            if isinstance(answer, dict) and any(answer.get(key) is True for key in accepted if key != REPLY_ACTION):
                return True
    return False


def observe_handle(module: ModuleType, before: Callable[[object], None], after: Callable[[object], None]) -> None:
    """Make ``main()`` build an instrumented handler: the same class, its ``handle()`` wrapped.

    The callbacks see the handler but must not keep it: an unpatched handler is meant to
    die (and disconnect in ``__del__``) at the end of its call.
    """
    base = getattr(module, HANDLER_CLASS)

    def handle(self):
        before(self)
        try:
            return base.handle(self)
        finally:
            after(self)

    setattr(module, HANDLER_CLASS, type(f"Observed{base.__name__}", (base,), {"handle": handle}))


def collection_sizes(handler, names) -> dict[str, int]:
    """Sizes of the named collections this handler has (dicts only)."""
    return {name: len(value) for name in names if isinstance(value := getattr(handler, name, None), dict)}


def raise_to(peaks: dict[str, int], sizes: dict[str, int]) -> None:
    """Keep in ``peaks`` the largest size seen of each collection."""
    for name, size in sizes.items():
        peaks[name] = max(peaks.get(name, 0), size)


# -- run 1: one process per hook event ---------------------------------------------------------


@dataclass
class PerProcessRun:
    """N hook processes, one after another, under one server condition.

    Server figures (``delivered``, connections) are ``None`` when no server counts them
    (no server listening, or a wedged one). A hung process counts the hang limit as its time.
    """

    condition: str
    hang_limit: float
    sent: dict[str, int]  # hook_event_name -> processes
    hook_seconds: list[float]  # wall time of each process, start to exit
    hung: int  # processes killed at the hang limit
    replies_not_continue: int
    failures: list[str]  # the first few, one line each
    delivered: dict[str, int] | None = None  # event type -> events the server received
    connections_opened: int | None = None
    connections_left_open: int | None = None  # still open at the server after the settle time
    exit_errors: int = 0  # processes that ended with an error (the wrapper then replies continue itself)
    channels: dict[str, int] | None = None  # socketio / http -> events received that way
    errors_reported: list[str] = field(default_factory=list)  # distinct error lines the hooks wrote on stderr

    def as_json(self) -> dict:
        figures = asdict(self)
        figures["hook_seconds_median"] = statistics.median(self.hook_seconds) if self.hook_seconds else None
        figures["hook_seconds_max"] = max(self.hook_seconds, default=None)
        return figures


@contextlib.contextmanager
def _condition(condition: str, port: int = 0) -> Iterator[tuple[int, SocketIOServer | None]]:
    """(port, the counting server or None) for a server condition, on ``port`` (0: a free one)."""
    if condition == SERVER_UP:
        with SocketIOServer(port) as server:
            yield server.port, server
    elif condition == WEDGED:
        with WedgedServer(port) as wedged:
            yield wedged.port, None
    elif condition == NO_SERVER:
        with nothing_listening(port) as held:
            yield held, None
    else:
        raise ValueError(f"unknown condition {condition!r}: one of {', '.join(CONDITIONS)}")


def run_per_process(
    python: str,
    handler: Path,
    events: int = DEFAULT_EVENTS,
    condition: str = SERVER_UP,
    *,
    hang_limit: float = HANG_LIMIT_SECONDS,
    settle: float = SETTLE_SECONDS,
    progress: Callable[[int, int], None] | None = None,
    launch: Launch | None = None,
) -> PerProcessRun:
    """Run the hook once per hook event, as the release's wrapper does (``launch``; by default
    ``python handler``, as 3.x's ``hook_wrapper.sh``), and measure it."""
    launch = launch or Launch.by_path(python, Path(handler).resolve())  # each hook runs in its event's folder
    sent: Counter = Counter()
    seconds: list[float] = []
    failures: list[str] = []
    hung = not_continue = exit_errors = 0
    errors_reported: list[str] = []
    with project_folders() as cwds, _condition(condition, launch.port) as (port, server):
        environment = wrapper_environment(port, launch.environment)
        for done, event in enumerate(hook_events(events, cwds), start=1):
            kind = event["hook_event_name"]
            sent[kind] += 1
            elapsed, returncode, stdout, stderr = _run_hook(launch.command, event, environment, hang_limit)
            seconds.append(elapsed)
            replied = replies_continue(stdout, launch.reply)
            failure = None
            if returncode is None:
                hung += 1
                failure = f"hung, killed after {hang_limit:g} s"
            elif returncode != 0:
                exit_errors += 1
                failure = f"exit {returncode}: {_last_line(stderr) or repr(stdout[:120])}"
            elif not replied:
                failure = f"exit {returncode}, no continue reply: {_last_line(stderr) or repr(stdout[:120])}"
            not_continue += not replied
            _collect_errors(errors_reported, stderr)
            if failure is not None and len(failures) < FAILURE_EXAMPLES:
                failures.append(f"hook {done} ({kind}): {failure}")
            if progress is not None:
                progress(done, events)
        run = PerProcessRun(
            condition,
            hang_limit,
            dict(sent),
            seconds,
            hung,
            not_continue,
            failures,
            exit_errors=exit_errors,
            errors_reported=errors_reported,
        )
        if server is not None:
            server.settle(settle)
            run.delivered = dict(server.received_by_type())
            run.connections_opened = server.opened
            run.connections_left_open = server.open_now()
            run.channels = dict(server.channels)
    return run


def _run_hook(
    command: list[str], event: dict, environment: dict[str, str], hang_limit: float
) -> tuple[float, int | None, str, str]:
    """(seconds, exit code or None when it hung and was killed, stdout, stderr) of one hook process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=event["cwd"],
        env=environment,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(claude_code_json(event), timeout=hang_limit)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        stdout, stderr = process.communicate()
        return hang_limit, None, stdout, stderr
    return time.perf_counter() - started, process.returncode, stdout, stderr


ERROR_LINE = re.compile(r"error|exception", re.IGNORECASE)


def _collect_errors(collected: list[str], stderr: str) -> None:
    """Keep the first few distinct lines where a hook reports an error it then swallowed (4.1.3-4.1.8 do)."""
    for line in stderr.splitlines():
        line = line.strip()[:200]
        if ERROR_LINE.search(line) and line not in collected and len(collected) < FAILURE_EXAMPLES:
            collected.append(line)


def _kill_group(process: subprocess.Popen) -> None:
    """Kill the process and whatever it started (a git lookup, say), so no pipe stays open."""
    with contextlib.suppress(ProcessLookupError):
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


# -- run 2: one long-lived process, main() called N times --------------------------------------


@dataclass
class LongLivedRun:
    """One process calling ``main()`` N times against the server, watched from outside."""

    calls: int
    hang_limit: float
    calls_done: int
    hung_call: int | None  # the call that was still running at the hang limit (then killed)
    exited: bool  # the process exited within the hang limit after its last call
    exit_code: int | None  # None when it was killed
    exit_seconds: float | None  # from the last call's return to the process exit
    replies_not_continue: int
    failures: list[str]
    sent: dict[str, int]  # hook_event_name -> calls that returned
    delivered: dict[str, int]
    connections_opened: int
    peak_open: int
    connections_left_open: int
    # name -> {"peak": int, "limit": int|None, "limit_name": the constant that would limit it, None for the
    # git-branch cache, which is bounded by age}
    collections: dict[str, dict] = field(default_factory=dict)
    cleanup_interval: int | None = None  # the handler's CLEANUP_INTERVAL_EVENTS, when it has one
    max_connections: int | None = None  # its connection pool's size, when it has a pool
    channels: dict[str, int] = field(default_factory=dict)  # socketio / http -> events received that way

    def as_json(self) -> dict:
        return asdict(self)


def run_long_lived(
    python: str,
    handler: Path,
    events: int = DEFAULT_EVENTS,
    *,
    hang_limit: float = HANG_LIMIT_SECONDS,
    settle: float = SETTLE_SECONDS,
    progress: Callable[[int, int], None] | None = None,
    launch: Launch | None = None,
) -> LongLivedRun:
    """Call ``main()`` ``events`` times in one ``python`` process against a fresh server, and measure it.

    The handler is imported as the wrapper runs it: by path, or as ``launch.module``. The
    process reports each call on a file of its own (its stdout belongs to the handler);
    no report for ``hang_limit`` seconds means the call hung, and the process is killed.
    """
    launch = launch or Launch.by_path(python, Path(handler).resolve())  # the process runs in a project folder
    target = ["--module", launch.module] if launch.module else [str(Path(launch.handler or handler).resolve())]
    with project_folders() as cwds, SocketIOServer(launch.port) as server, tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "calls.jsonl"
        report.touch()
        command = [
            python,
            str(Path(__file__).resolve()),
            "--long-lived-child",
            *target,
            "--function",
            launch.function,
            "--reply",
            launch.reply,
            "--events",
            str(events),
            "--report",
            str(report),
            "--cwds",
            os.pathsep.join(cwds),
        ]
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=cwds[0],
            env=wrapper_environment(server.port, launch.environment),
            start_new_session=True,
        )
        lines: list[dict] = []
        last_news = time.monotonic()
        finished_at: float | None = None
        with report.open() as reader:
            unfinished = ""
            while True:
                running = process.poll() is None  # before reading: what it wrote before exiting is read now
                *complete, unfinished = (unfinished + reader.read()).split("\n")
                fresh = [json.loads(line) for line in complete]
                if fresh:
                    lines += fresh
                    last_news = time.monotonic()
                    if progress is not None:
                        progress(sum(1 for line in lines if "call" in line), events)
                    if finished_at is None and "done" in lines[-1]:
                        finished_at = time.monotonic()
                if not running or time.monotonic() - last_news > hang_limit:
                    break
                time.sleep(0.02)
        exited_at = time.monotonic() if process.poll() is not None else None
        if exited_at is None:
            _kill_group(process)
        process.wait()
        server.settle(settle)
        exit_code = None if exited_at is None else process.returncode
        return _long_lived_figures(lines, events, hang_limit, finished_at, exited_at, exit_code, server)


def _long_lived_figures(
    lines: list[dict],
    events: int,
    hang_limit: float,
    finished_at: float | None,
    exited_at: float | None,
    exit_code: int | None,
    server: SocketIOServer,
) -> LongLivedRun:
    calls = [line for line in lines if "call" in line]
    done: dict = next((line["done"] for line in lines if "done" in line), {})
    failures = [f"call {line['call']} ({line['kind']}): {line['failure']}" for line in calls if line["failure"]]
    failures += [f"import: {line['import_failure']}" for line in lines if "import_failure" in line]
    peaks: dict[str, int] = {}
    for line in calls:
        raise_to(peaks, line["sizes"])
    limits = done.get("limits", {})
    hung_call = len(calls) + 1 if finished_at is None and exited_at is None else None
    if hung_call is not None:
        failures.append(f"call {hung_call}: hung, killed after {hang_limit:g} s")
    exit_seconds = None if finished_at is None or exited_at is None else round(exited_at - finished_at, 3)
    started = len(calls) + (hung_call is not None)  # a hung call's event was handed over too
    return LongLivedRun(
        calls=events,
        hang_limit=hang_limit,
        calls_done=len(calls),
        hung_call=hung_call,
        exited=exit_seconds is not None,
        exit_code=exit_code,
        exit_seconds=exit_seconds,
        replies_not_continue=sum(1 for line in calls if not line["replied"]),
        failures=failures[:FAILURE_EXAMPLES],
        sent=dict(Counter(TURN[index % len(TURN)] for index in range(started))),
        delivered=dict(server.received_by_type()),
        connections_opened=server.opened,
        peak_open=server.peak,
        connections_left_open=server.open_now(),
        collections={
            name: {"peak": peak, "limit": limits.get(name), "limit_name": SIZE_LIMITS[name]}
            for name, peak in peaks.items()
        },
        cleanup_interval=done.get("cleanup_interval"),
        max_connections=done.get("max_connections"),
        channels=dict(server.channels),
    )


def long_lived_child(
    handler: Path | None,
    events: int,
    report: Path,
    cwds: list[str],
    module_name: str | None = None,
    function: str = "main",
    reply: str = REPLY_ACTION,
) -> None:
    """The watched process of :func:`run_long_lived`: ``main()`` N times, one report line per call.

    Then it returns, and the interpreter's exit (where a handler kept in a module global is
    torn down) is timed by the watcher.
    """
    with report.open("a") as out:
        try:
            if module_name:
                import importlib

                module = importlib.import_module(module_name)
            else:
                assert handler is not None
                sys.path.insert(0, str(handler.parent))  # as when the file is run as a script
                module = import_handler(handler)
        except Exception as error:  # the per-process run shows the same failure on every hook
            out.write(json.dumps({"import_failure": repr(error)[:200]}) + "\n")
            out.write(json.dumps({"done": {}}) + "\n")
            return
        seen: dict[str, object] = {}

        def measure(instance) -> None:
            seen["sizes"] = collection_sizes(instance, SIZE_LIMITS)
            seen["limits"] = {
                name: _constant(instance, module, constant) for name, constant in SIZE_LIMITS.items() if constant
            }
            seen["cleanup_interval"] = _constant(instance, module, CLEANUP_INTERVAL)
            pool = getattr(instance, POOL_ATTRIBUTE, None)
            seen["max_connections"] = getattr(pool, "max_connections", None)

        if hasattr(module, HANDLER_CLASS):
            observe_handle(module, lambda instance: None, measure)
        for number, event in enumerate(hook_events(events, cwds), start=1):
            seen["sizes"] = {}
            replied, failure = call_hook(module, event, reply, function, real_stdin=True)
            line = {
                "call": number,
                "kind": event["hook_event_name"],
                "replied": replied,
                "failure": failure,
                "sizes": seen["sizes"],
            }
            out.write(json.dumps(line) + "\n")
            out.flush()
        summary = {key: seen.get(key) for key in ("limits", "cleanup_interval", "max_connections")}
        out.write(json.dumps({"done": summary}) + "\n")


def _constant(handler, module: ModuleType, name: str) -> int | None:
    """A limit as the handler sees it: an attribute (claude-mpm 3.9.4+) or a module constant (ours)."""
    value = getattr(handler, name, getattr(module, name, None))
    return value if isinstance(value, int) else None


# -- the command line (inside the target interpreter) -----------------------------------------


def missing_packages() -> list[str]:
    """The distributions the server and the handler's client need that this interpreter lacks."""
    return [package for module, package in REQUIRED_MODULES.items() if importlib.util.find_spec(module) is None]


def transport() -> str:
    """The Socket.IO transport the handler's client ends up on: websocket-client makes it upgrade."""
    return "websocket" if importlib.util.find_spec("websocket") is not None else "polling"


def package_versions() -> dict[str, str | None]:
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in ("claude-mpm", "python-socketio", "python-engineio", "aiohttp", "websocket-client"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def verify(
    handler: Path,
    events: int,
    hang_limit: float = HANG_LIMIT_SECONDS,
    progress: Callable[[str, int, int], None] | None = None,
    launch: Launch | None = None,
) -> dict:
    """The runs on ``handler`` in this interpreter: the figures ``fix-memory-leaks verify`` judges.

    Per process with the server up and with none, a few hooks against a wedged server (their
    time is reported), and the long-lived run where the hook is Python (not for a shell hook).
    """
    python = sys.executable
    launch = launch or Launch.by_path(python, Path(handler).resolve())

    def stage(name: str) -> Callable[[int, int], None] | None:
        return None if progress is None else (lambda done, total: progress(name, done, total))

    with claude_code_on_path() as claude_code:
        figures = _runs(python, handler, events, hang_limit, stage, launch)
    return {
        "python": python,
        "python_version": ".".join(map(str, sys.version_info[:3])),
        "packages": package_versions(),
        "transport": transport(),
        "events": events,
        "hang_limit": hang_limit,
        "claude_code": claude_code,
        **figures,
    }


def _runs(python: str, handler: Path, events: int, hang_limit: float, stage, launch: Launch) -> dict:
    per_process = {
        condition: run_per_process(
            python,
            handler,
            count,
            condition,
            hang_limit=hang_limit,
            progress=stage(f"per process, {condition.replace('_', ' ')}"),
            launch=launch,
        ).as_json()
        for condition, count in ((SERVER_UP, events), (NO_SERVER, events), (WEDGED, min(events, WEDGED_EVENTS)))
    }
    long_lived = None
    if launch.module or launch.handler:
        long_lived = run_long_lived(
            python, handler, events, hang_limit=hang_limit, progress=stage("long-lived"), launch=launch
        ).as_json()
    return {"per_process": per_process, "long_lived": long_lived}


def _print_progress(stage: str, done: int, total: int) -> None:
    print(PROGRESS_PREFIX + json.dumps({"stage": stage, "done": done, "total": total}), file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a claude-mpm hook handler for real and print figures as JSON.")
    parser.add_argument("handler", type=Path, nargs="?")
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--hang-limit", type=float, default=HANG_LIMIT_SECONDS)
    parser.add_argument("--launch", type=Launch.from_json, help="how the wrapper runs the hook (JSON of Launch)")
    parser.add_argument("--netns", action="store_true", help="in a fresh network namespace: bring up loopback")
    parser.add_argument("--long-lived-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--module", help=argparse.SUPPRESS)
    parser.add_argument("--function", default="main", help=argparse.SUPPRESS)
    parser.add_argument("--reply", default=REPLY_ACTION, help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cwds", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.long_lived_child:
        cwds = args.cwds.split(os.pathsep)
        long_lived_child(args.handler, args.events, args.report, cwds, args.module, args.function, args.reply)
        return 0
    missing = missing_packages()
    if missing:
        print(json.dumps({"error": f"missing in {sys.executable}: {', '.join(missing)}", "missing": missing}))
        return 2
    if args.netns:
        loopback_up()
    print(json.dumps(verify(args.handler, args.events, args.hang_limit, _print_progress, args.launch)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
