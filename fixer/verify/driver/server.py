"""The dashboards a hook meets: a counting server like claude-mpm's, a wedged one, none at all.

claude-mpm's dashboard is python-socketio on aiohttp (``claude_event``, 3.x and 4.0) and, from
4.1.3, ``POST /api/events``; :class:`SocketIOServer` serves both and counts what the hooks' clients
do. :func:`serving` sets up one :class:`~.contract.Condition` on a port.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Callable

from .contract import SETTLE_SECONDS, Condition

EVENTS_PATH = "/api/events"
SOCKETIO, HTTP = "socketio", "http"  # the channels an event arrives by
# claude-mpm's dashboard (services/socketio_server.py) runs its server with these.
DASHBOARD_PING_INTERVAL = 30
DASHBOARD_PING_TIMEOUT = 120
QUIET_SECONDS = 0.25  # no new event for this long: the clients' send queues are drained


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


@contextlib.contextmanager
def serving(condition: Condition, port: int = 0) -> Iterator[tuple[int, SocketIOServer | None]]:
    """(port, the counting server or None) for a server condition, on ``port`` (0: a free one)."""
    if condition is Condition.SERVER_UP:
        with SocketIOServer(port) as server:
            yield server.port, server
    elif condition is Condition.WEDGED:
        with WedgedServer(port) as wedged:
            yield wedged.port, None
    else:
        with nothing_listening(port) as held:
            yield held, None
