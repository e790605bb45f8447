"""Drive a real claude-mpm hook handler, in this process, against a real Socket.IO server.

Shared by the soak test (``tests/test_soak.py``) and the benchmarks (``bench.leak``,
``bench.soak``): one way to start the server, load a handler, feed it hook events and
measure what it leaves behind, so the test and the plots cannot disagree on method.

Claude Code runs the hook as ``main()`` with the event as JSON on stdin and reads the
reply on stdout; :func:`soak` does exactly that, N times in one process, which is what
a long-lived handler process sees. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import io
import itertools
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import psutil
import socketio
from aiohttp import web

from codemods.settings import Settings
from codemods.shape import CLEANUP_INTERVAL, EVENT_COUNTER, GIT_CACHE, HANDLER_CLASS, TRACKED_COLLECTIONS

# Every collection whose size a run records: the tracked dicts and the git-branch cache.
COLLECTIONS = (*TRACKED_COLLECTIONS, GIT_CACHE[0])
CONTINUE = {"action": "continue"}
TURN = ("UserPromptSubmit", "PreToolUse", "PostToolUse", "SubagentStop", "Stop")
AGENTS = ("research", "engineer", "qa", "documentation", "ops")
# Grown git-cache entries are this old: well past any sane cache age limit.
STALE_AGE_SECONDS = 3600.0
# The soak test's and bench.soak's run: small limits and a short interval, so that within
# SOAK_CALLS calls every bound is crossed and trimmed several times.
SOAK_CALLS = 400
SOAK_SETTINGS = Settings(max_delegation_tracking=100, max_prompt_tracking=50, cleanup_interval_events=50)
QUIET_SECONDS = 0.25  # no new event for this long: the clients' send queues are drained
DELIVERY_TIMEOUT = 2.0  # the most a run waits at its end for emitted events and disconnects


class SocketIOServer:
    """A python-socketio server on 127.0.0.1 (a free port) in a thread with its own event loop.

    It counts what the hook handler's clients do: connections open now, the most open at
    once, every connection ever opened, and the ``claude_event`` events received, by type.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.open = 0
        self.peak = 0
        self.opened = 0
        self.received: Counter = Counter()
        self.port: Optional[int] = None
        self._ready = threading.Event()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._failure: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._serve, name="socketio-server", daemon=True)

    def __enter__(self) -> "SocketIOServer":
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

    def wait_until(self, condition: Callable[[], bool], timeout: float = DELIVERY_TIMEOUT) -> None:
        """Poll ``condition`` until it holds or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)

    def wait_until_quiet(self, quiet: float = QUIET_SECONDS, timeout: float = DELIVERY_TIMEOUT) -> None:
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

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        sio = socketio.AsyncServer(async_mode="aiohttp", logger=False, engineio_logger=False)
        sio.on("connect", self._on_connect)
        sio.on("disconnect", self._on_disconnect)
        sio.on("claude_event", self._on_claude_event)
        app = web.Application()
        sio.attach(app)
        # Clients still connected at stop must not hold the shutdown for aiohttp's default 60 s.
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
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
    async def _shutdown(sio: socketio.AsyncServer, runner: web.AppRunner) -> None:
        await sio.shutdown()
        await runner.cleanup()
        # Ping tasks of sockets that were still open would be destroyed pending otherwise.
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _on_connect(self, *args) -> None:
        with self._lock:
            self.open += 1
            self.opened += 1
            self.peak = max(self.peak, self.open)

    async def _on_disconnect(self, *args) -> None:
        with self._lock:
            self.open -= 1

    async def _on_claude_event(self, sid, data) -> None:
        with self._lock:
            self.received[data.get("type", "?") if isinstance(data, dict) else "?"] += 1


def hook_events(count: int, cwds: List[str]) -> Iterator[dict]:
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
        event = {"hook_event_name": kind, "session_id": session, "cwd": cwd,
                 "transcript_path": f"{cwd}/.claude/{session}.jsonl"}
        task = {"subagent_type": agent, "description": f"turn {turn}",
                "prompt": f"Investigate failing test number {turn} and report back."}
        if kind == "UserPromptSubmit":
            event["prompt"] = f"Please fix bug #{turn}; the build is broken."
        elif kind in ("PreToolUse", "PostToolUse"):
            event.update(tool_name="Task", tool_input=task)
            if kind == "PostToolUse":
                event.update(tool_response={"content": f"{agent} finished turn {turn}"}, exit_code=0)
        else:
            event.update(stop_hook_active=False, reason="completed")
        yield event


class Growth:
    """What a long session adds to a handler's state that these synthetic events never do.

    In a real session the tracked dicts fill from code paths a soak cannot reach (response
    tracking and memory hooks need the rest of claude-mpm), and git-branch cache entries age
    past the cache limit over hours. So, at the start of each hook call, this adds to the
    handler that is about to serve it: one new ``delegation_requests`` key and one new
    ``pending_prompts`` key (where the layout has these dicts) and one git-branch cache entry
    already ``STALE_AGE_SECONDS`` old. The entries have the shapes the handler itself stores.

    Patched, that handler is the process's one ``_global_handler``, so the entries pile up
    until the periodic cleanup trims them. Unpatched, every call builds a fresh handler, so
    the entries die with it at the end of the call: nothing is faked as accumulating there,
    and the only thing the unpatched handler piles up is Socket.IO connections.
    """

    def __init__(self) -> None:
        self.added = 0

    def __call__(self, handler) -> None:
        key = f"grown-{self.added:07d}"
        now = time.time()
        requests = getattr(handler, "delegation_requests", None)
        if isinstance(requests, dict):
            requests[key] = {"agent_type": "engineer", "request": {"prompt": key}, "timestamp": now}
        prompts = getattr(handler, "pending_prompts", None)
        if isinstance(prompts, dict):
            prompts[key] = {"prompt": key, "timestamp": now, "working_directory": "/grown"}
        branches, cached_at = (getattr(handler, name, None) for name in GIT_CACHE)
        if isinstance(branches, dict) and isinstance(cached_at, dict):
            branches[f"/grown/{key}"] = "main"
            cached_at[f"/grown/{key}"] = now - STALE_AGE_SECONDS
        self.added += 1


@dataclass
class Sample:
    """The state after ``events`` hook calls, for the leak plot.

    ``sizes`` holds the largest size of each collection since the previous sample: sampled
    at the very call that runs a cleanup, the sizes would hide everything the handler held
    between two cleanups.
    """

    events: int
    connections_opened: int
    connections_open: int
    events_delivered: int
    sizes: Dict[str, int]
    rss_mb: float


@dataclass
class RunResult:
    """What one run of N hook calls did, as seen by the server and on the handler."""

    label: str
    events: int
    seconds: float  # in hook calls, without the pauses for samples
    sent: Counter  # hook_event_name -> calls
    replies_ok: int  # calls whose stdout holds {"action": "continue"}
    errors: int  # calls that raised, exited non-zero or did not reply "continue"
    error_examples: List[str]
    connections_opened: int
    peak_concurrent: int
    open_at_end: int  # still connected after the handler was released
    delivered: Counter  # claude_event type -> events the server received
    peak_sizes: Dict[str, int]
    final_sizes: Dict[str, int]
    peak_stale: int  # most git-cache entries older than the age limit between two calls
    cleanups: int  # calls that ran the patched handler's periodic cleanup
    after_cleanup_sizes: Dict[str, int]  # largest size of each collection right after a cleanup call
    stale_after_cleanup: int  # most stale git-cache entries right after a cleanup call
    samples: List[Sample] = field(default_factory=list)

    @property
    def delivered_total(self) -> int:
        return sum(self.delivered.values())


_module_ids = itertools.count()


def load_handler(source: bytes, root: Path) -> ModuleType:
    """Import ``source`` as a fresh module (unique name, not put in ``sys.modules``).

    The file sits where the wheel puts it, under ``root``; 3.4.x handlers add a folder
    relative to their own file to ``sys.path``, which is undone afterwards.
    """
    path = root / "claude_mpm" / "hooks" / "claude_hooks" / "hook_handler.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location(f"soaked_hook_handler_{next(_module_ids)}", path)
    module = importlib.util.module_from_spec(spec)
    saved_path = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved_path
    return module


@contextlib.contextmanager
def hook_environment(port: int) -> Iterator[None]:
    """The environment claude-mpm gives its hook: the server's port, debug output off."""
    values = {"CLAUDE_MPM_SOCKETIO_PORT": str(port), "CLAUDE_MPM_HOOK_DEBUG": "false"}
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def call_hook(module: ModuleType, event: dict) -> Tuple[bool, Optional[str]]:
    """One hook call as Claude Code makes it: did it reply "continue", and why it failed, if it did."""
    stdout, saved_stdin = io.StringIO(), sys.stdin
    sys.stdin = io.StringIO(json.dumps(event))
    failure = None
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
            module.main()
    except SystemExit as exit_:  # some handlers end with sys.exit(0)
        if exit_.code not in (None, 0):
            failure = f"exit {exit_.code}"
    except Exception as error:
        failure = f"raised {error!r}"
    finally:
        sys.stdin = saved_stdin
    replied = _replies_continue(stdout.getvalue())
    if failure is None and not replied:
        failure = f"no continue reply in {stdout.getvalue()[:200]!r}"
    return replied, failure


def _replies_continue(output: str) -> bool:
    for line in output.splitlines():
        with contextlib.suppress(ValueError):
            if json.loads(line) == CONTINUE:
                return True
    return False


def collection_sizes(handler) -> Dict[str, int]:
    """Sizes of the recorded collections this handler has."""
    return {name: len(value) for name in COLLECTIONS if isinstance(value := getattr(handler, name, None), dict)}


def stale_entries(handler, max_age: float) -> int:
    """Git-branch cache entries older than ``max_age`` seconds."""
    cached_at = getattr(handler, GIT_CACHE[1], None)
    if not isinstance(cached_at, dict):
        return 0
    expired_before = time.time() - max_age
    return sum(1 for stamp in cached_at.values() if stamp < expired_before)


class _Observer:
    """Grows the handler at the start of each call and measures it at the end."""

    def __init__(self, module: ModuleType, max_cache_age: float) -> None:
        self.growth = Growth()
        self.interval = getattr(module, CLEANUP_INTERVAL, None)
        self.max_cache_age = max_cache_age
        self.sizes: Dict[str, int] = {}
        self.peak_sizes: Dict[str, int] = {}
        self.window_sizes: Dict[str, int] = {}  # peaks since the last sample
        self.peak_stale = 0
        self.cleanups = 0
        self.after_cleanup_sizes: Dict[str, int] = {}
        self.stale_after_cleanup = 0

    def before(self, handler) -> None:
        self.growth(handler)

    def after(self, handler) -> None:
        self.sizes = collection_sizes(handler)
        _raise_to(self.peak_sizes, self.sizes)
        _raise_to(self.window_sizes, self.sizes)
        stale = stale_entries(handler, self.max_cache_age)
        self.peak_stale = max(self.peak_stale, stale)
        processed = getattr(handler, EVENT_COUNTER, None)
        if self.interval and processed and processed % self.interval == 0:  # this call ran the cleanup
            self.cleanups += 1
            _raise_to(self.after_cleanup_sizes, self.sizes)
            self.stale_after_cleanup = max(self.stale_after_cleanup, stale)


def _raise_to(peaks: Dict[str, int], sizes: Dict[str, int]) -> None:
    for name, size in sizes.items():
        peaks[name] = max(peaks.get(name, 0), size)


def _observe(module: ModuleType, observer: _Observer) -> None:
    """Make ``main()`` build an instrumented handler: the same class, its ``handle()`` wrapped."""
    base = getattr(module, HANDLER_CLASS)

    class Observed(base):
        def handle(self):
            observer.before(self)
            try:
                return super().handle()
            finally:
                observer.after(self)

    setattr(module, HANDLER_CLASS, Observed)


def _release(module: ModuleType) -> None:
    """What process exit does: drop every handler the module holds, so its ``__del__`` runs."""
    base = getattr(module, HANDLER_CLASS)
    for name, value in list(vars(module).items()):
        if isinstance(value, base):
            setattr(module, name, None)
    gc.collect()


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def soak(source: bytes, events: int, *, label: str = "", sample_every: int = 0,
         max_cache_age: float = Settings().max_cache_age_seconds,
         progress: Optional[Callable[[Sample], None]] = None) -> RunResult:
    """Drive ``events`` hook calls through ``main()`` of the handler ``source`` against a fresh server.

    When ``sample_every`` is positive, samples the state before the first call, every
    ``sample_every`` calls and after the last one. At the end it waits, bounded, for the
    emitted events to arrive, then releases the handler and waits, bounded, for its
    clients to disconnect.
    """
    samples: List[Sample] = []
    sent: Counter = Counter()
    errors: List[str] = []
    replies_ok = 0
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp, SocketIOServer() as server:
        root = Path(tmp)
        cwds = [str(root / f"project-{n}") for n in range(3)]
        for cwd in cwds:
            os.mkdir(cwd)
        with hook_environment(server.port):
            module = load_handler(source, root)
            observer = _Observer(module, max_cache_age)
            _observe(module, observer)

            paused = 0.0

            def take_sample(done: int) -> None:
                """Record the state; the calls are faster than delivery, so let the clients catch up first."""
                nonlocal paused
                pause_started = time.perf_counter()
                server.wait_until_quiet()
                samples.append(Sample(done, server.opened, server.open, server.delivered, observer.window_sizes,
                                      rss_mb()))
                observer.window_sizes = {}
                if progress is not None:
                    progress(samples[-1])
                paused += time.perf_counter() - pause_started

            if sample_every:
                take_sample(0)
            started = time.perf_counter()
            for done, event in enumerate(hook_events(events, cwds), start=1):
                sent[event["hook_event_name"]] += 1
                replied, failure = call_hook(module, event)
                replies_ok += replied
                if failure is not None:
                    errors.append(f"call {done} ({event['hook_event_name']}): {failure}")
                if sample_every and (done % sample_every == 0 or done == events):
                    take_sample(done)
            seconds = time.perf_counter() - started - paused
            server.wait_until_quiet()
            _release(module)
            server.wait_until(lambda: server.open == 0)
        return RunResult(
            label=label, events=events, seconds=seconds, sent=sent,
            replies_ok=replies_ok,
            errors=len(errors), error_examples=errors[:10],
            connections_opened=server.opened, peak_concurrent=server.peak, open_at_end=server.open,
            delivered=server.received_by_type(), peak_sizes=observer.peak_sizes, final_sizes=observer.sizes,
            peak_stale=observer.peak_stale, cleanups=observer.cleanups,
            after_cleanup_sizes=observer.after_cleanup_sizes, stale_after_cleanup=observer.stale_after_cleanup,
            samples=samples,
        )


def table(headers: List[str], rows: List[list]) -> str:
    """A plain-text table, columns right-aligned, for the benchmarks' summaries."""
    cells = [headers, *[[str(cell) for cell in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
