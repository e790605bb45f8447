"""Drive a real claude-mpm hook handler, in this process, against a real Socket.IO server.

Used by the soak test (``tests/test_soak.py``) and the benchmarks (``bench.leak``, ``bench.soak``),
and by nothing the command line runs, so it lives here, out of the wheel. One way to load a
handler, feed it hook events and measure what it leaves behind, so the test and the plots cannot
disagree on method. The server, the hook events, the way a hook is called and its environment
(``fixer.verify.driver.wrapper_variables``) are the ones ``fix-memory-leaks verify`` uses.

Claude Code runs the hook as ``main()`` with the event as JSON on stdin and reads the
reply on stdout; :func:`soak` does exactly that, N times in one process, which is what
a long-lived handler process sees. Traffic goes to 127.0.0.1 only. Unlike ``verify``, it
adds the state a long session grows (:class:`Growth`), and samples memory along the way.
"""

from __future__ import annotations

import contextlib
import gc
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Callable

import psutil

from codemods.reading.shape import CLEANUP_INTERVAL, EVENT_COUNTER, GIT_CACHE, HANDLER_CLASS, TRACKED_COLLECTIONS
from codemods.settings import Settings
from fixer.verify.driver import (
    SocketIOServer,
    call_hook,
    collection_sizes,
    hook_events,
    import_handler,
    observe_handle,
    project_folders,
    raise_to,
    wrapper_variables,
)

# Every collection whose size a run records: the tracked dicts and the git-branch cache.
COLLECTIONS = (*TRACKED_COLLECTIONS, GIT_CACHE[0])
# Grown git-cache entries are this old: well past any sane cache age limit.
STALE_AGE_SECONDS = 3600.0
# The soak test's and bench.soak's run: small limits and a short interval, so that within
# SOAK_CALLS calls every bound is crossed and trimmed several times.
SOAK_CALLS = 400
SOAK_SETTINGS = Settings(max_delegation_tracking=100, max_prompt_tracking=50, cleanup_interval_events=50)


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
    sizes: dict[str, int]
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
    error_examples: list[str]
    connections_opened: int
    peak_concurrent: int
    open_at_end: int  # still connected after the handler was released
    delivered: Counter  # claude_event type -> events the server received
    transports: Counter  # transport ("polling", "websocket") -> events the server received over it
    peak_sizes: dict[str, int]
    peak_stale: int  # most git-cache entries older than the age limit between two calls
    cleanups: int  # calls that ran the patched handler's periodic cleanup
    after_cleanup_sizes: dict[str, int]  # largest size of each collection right after a cleanup call
    stale_after_cleanup: int  # most stale git-cache entries right after a cleanup call
    samples: list[Sample] = field(default_factory=list)

    @property
    def delivered_total(self) -> int:
        return sum(self.delivered.values())


def load_handler(source: bytes, root: Path) -> ModuleType:
    """Import ``source`` as a fresh module, from where the wheel puts it under ``root``."""
    path = root / "claude_mpm" / "hooks" / "claude_hooks" / "hook_handler.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(source)
    return import_handler(path)


@contextlib.contextmanager
def hook_environment(port: int) -> Iterator[None]:
    """The environment claude-mpm's wrapper gives its hook (``driver.wrapper_variables``), for this process."""
    values = wrapper_variables(port)
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
        self.sizes: dict[str, int] = {}
        self.peak_sizes: dict[str, int] = {}
        self.window_sizes: dict[str, int] = {}  # peaks since the last sample
        self.peak_stale = 0
        self.cleanups = 0
        self.after_cleanup_sizes: dict[str, int] = {}
        self.stale_after_cleanup = 0

    def before(self, handler) -> None:
        self.growth(handler)

    def after(self, handler) -> None:
        self.sizes = collection_sizes(handler, COLLECTIONS)
        raise_to(self.peak_sizes, self.sizes)
        raise_to(self.window_sizes, self.sizes)
        stale = stale_entries(handler, self.max_cache_age)
        self.peak_stale = max(self.peak_stale, stale)
        processed = getattr(handler, EVENT_COUNTER, None)
        if self.interval and processed and processed % self.interval == 0:  # this call ran the cleanup
            self.cleanups += 1
            raise_to(self.after_cleanup_sizes, self.sizes)
            self.stale_after_cleanup = max(self.stale_after_cleanup, stale)


def _release(module: ModuleType) -> None:
    """What process exit does: drop every handler the module holds, so its ``__del__`` runs."""
    base = getattr(module, HANDLER_CLASS)
    for name, value in list(vars(module).items()):
        if isinstance(value, base):
            setattr(module, name, None)
    gc.collect()


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def soak(
    source: bytes,
    events: int,
    *,
    label: str = "",
    sample_every: int = 0,
    max_cache_age: float = Settings().max_cache_age_seconds,
    progress: Callable[[Sample], None] | None = None,
) -> RunResult:
    """Drive ``events`` hook calls through ``main()`` of the handler ``source`` against a fresh server.

    When ``sample_every`` is positive, samples the state before the first call, every
    ``sample_every`` calls and after the last one. At the end it waits, bounded, for the
    emitted events to arrive, then releases the handler and waits, bounded, for its
    clients to disconnect.
    """
    samples: list[Sample] = []
    sent: Counter = Counter()
    errors: list[str] = []
    replies_ok = 0
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp, project_folders() as cwds, SocketIOServer() as server:
        with hook_environment(server.port):
            module = load_handler(source, Path(tmp))
            observer = _Observer(module, max_cache_age)
            observe_handle(module, HANDLER_CLASS, observer.before, observer.after)

            paused = 0.0

            def take_sample(done: int) -> None:
                """Record the state; the calls are faster than delivery, so let the clients catch up first."""
                nonlocal paused
                pause_started = time.perf_counter()
                server.wait_until_quiet()
                samples.append(
                    Sample(done, server.opened, server.open, server.delivered, observer.window_sizes, rss_mb())
                )
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
            label=label,
            events=events,
            seconds=seconds,
            sent=sent,
            replies_ok=replies_ok,
            errors=len(errors),
            error_examples=errors[:10],
            connections_opened=server.opened,
            peak_concurrent=server.peak,
            open_at_end=server.open,
            delivered=server.received_by_type(),
            transports=Counter(server.transports),
            peak_sizes=observer.peak_sizes,
            peak_stale=observer.peak_stale,
            cleanups=observer.cleanups,
            after_cleanup_sizes=observer.after_cleanup_sizes,
            stale_after_cleanup=observer.stale_after_cleanup,
            samples=samples,
        )
