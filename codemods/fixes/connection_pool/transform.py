"""The connection pool's LibCST transformer: the pool class, the handler taking its clients from it."""

from __future__ import annotations

from string import Template

import libcst as cst

from ...reading.features import HANDLER_CLASS, POOL_CLASS, POOL_REVISION, UnsupportedShape
from ..base import (
    FixTransformer,
    block_statements,
    defines,
    insert_before,
    is_handler_class,
    prepend_to_method,
    replace_statement,
    with_class_body,
)
from ..upstream_repair import DropStatements, calls_attribute, contains_call, visit_methods
from . import FIX, PoolStep

NO_RETRY_NOTE = FIX.mark("no retry through an immediate reconnection: the pool tries a failed port again later")

POOL_CLASS_CODE = Template('''
$mark
class SocketIOConnectionPool:
    """At most ``max_connections`` live Socket.IO clients, one per port, reused across events.

    The handler used to build a new client for each event. The pool hands out the live
    client of a port and replaces one whose connection or sender has died. Claude Code
    starts one hook process per event and waits for it, so the pool also bounds every
    wait: a port that failed is not retried at once, and the clients are closed before
    the interpreter shuts down (pending events sent first), because at finalization the
    client's threads are frozen and a disconnect then hangs or drops what was queued.
    """

    REVISION = $revision  # tells this code apart from an older fix-memory-leaks pool
    CONNECT_TIMEOUT = 0.5  # seconds for each step of the handshake with the server
    CLOSE_TIMEOUT = 0.5  # seconds in all to send what is pending and close, at exit
    RETRY_AFTER = 5.0  # seconds before a port that failed to connect is tried again
    MAX_QUEUED = 8  # packets waiting to be sent (a long-polling POST may carry 16)

    def __init__(self, max_connections=3):
        self.max_connections = max_connections
        self.connections = {}  # port -> client, oldest first
        self._failed_at = {}  # port -> when connecting to it last failed
        # Close the clients when the pool goes away, or at the latest at exit (atexit time):
        # the callback holds the connections, not the pool, so the pool can still be freed.
        weakref.finalize(self, type(self)._close_clients, self.connections)

    def get_connection(self, port):
        """A connected client for ``port``, or None when no server answers there."""
        for known_port, client in list(self.connections.items()):
            if not self._usable(client):
                self._close(self.connections.pop(known_port), deadline=0)
        client = self.connections.get(port)
        if client is None:
            failed_at = self._failed_at.get(port)
            if failed_at is not None and time.monotonic() - failed_at < self.RETRY_AFTER:
                return None
            while self.connections and len(self.connections) >= self.max_connections:
                oldest_port = next(iter(self.connections))
                self._close(self.connections.pop(oldest_port), time.monotonic() + self.CLOSE_TIMEOUT)
            client = self._connect(port)
            if client is None:
                self._failed_at[port] = time.monotonic()
                return None
            self.connections[port] = client
        # Back-pressure: the server refuses a POST of too many packets, and its sender then stops.
        self._wait_until(lambda: self._queued(client) < self.MAX_QUEUED, time.monotonic() + 1.0)
        return client

    def close_all(self):
        """Send what the clients still have queued, then disconnect them (bounded in time)."""
        self._close_clients(self.connections)

    def _connect(self, port):
        if socketio is None:
            return None
        client = socketio.Client(
            reconnection=False, logger=False, engineio_logger=False, request_timeout=self.CONNECT_TIMEOUT
        )
        try:
            client.connect(f"http://localhost:{port}", wait_timeout=self.CONNECT_TIMEOUT)
        except Exception:
            return None
        return client if client.connected else None

    @classmethod
    def _close_clients(cls, connections):
        clients = list(connections.values())
        connections.clear()
        if sys.is_finalizing():
            return  # the clients' threads are frozen: waiting on them would hang the process
        deadline = time.monotonic() + cls.CLOSE_TIMEOUT
        for client in clients:
            cls._close(client, deadline)

    @classmethod
    def _close(cls, client, deadline):
        """Let the sender drain the queue, then disconnect; never wait past ``deadline``.

        The disconnect runs in a daemon thread: over long-polling it waits for the server's
        next poll answer, over websocket for its close frame. The goodbye is sent once the
        sender thread has ended, and that is all that needs waiting for.
        """
        cls._wait_until(lambda: cls._queued_or_sending(client) == 0 or not cls._sending(client), deadline)
        closer = threading.Thread(target=cls._disconnect, args=(client,), daemon=True)
        closer.start()
        cls._wait_until(lambda: not cls._sending(client), deadline)

    @staticmethod
    def _disconnect(client):
        try:
            client.disconnect()
        except Exception:
            pass

    @classmethod
    def _usable(cls, client):
        return client.connected and cls._sending(client)

    @staticmethod
    def _sending(client):
        """Whether the client's sender thread is still running."""
        sender = getattr(getattr(client, "eio", None), "write_loop_task", None)
        return sender is not None and sender.is_alive()

    @staticmethod
    def _queued(client):
        queue = getattr(getattr(client, "eio", None), "queue", None)
        return queue.qsize() if queue is not None else 0

    @staticmethod
    def _queued_or_sending(client):
        queue = getattr(getattr(client, "eio", None), "queue", None)
        return queue.unfinished_tasks if queue is not None else 0

    @staticmethod
    def _wait_until(condition, deadline):
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.002)
''')

POOL_ATTRIBUTE_CODE = Template("self.connection_pool = SocketIOConnectionPool(max_connections=$max_connections)  $mark")

CLIENT_GETTER_CODE = Template('''
"""Return the pooled Socket.IO client, or None (no server)."""
$mark
# The pool owns and closes the client; self.sio_client stays unset, so that no other
# code disconnects it in a way that blocks the hook or drops its queued events.
$port_statement
return self.connection_pool.get_connection(port)
''')


class _FindPortStatement(cst.CSTVisitor):
    """The first ``port = ...`` statement of a method: the pool must connect where the handler did."""

    def __init__(self) -> None:
        self.found: cst.SimpleStatementLine | None = None

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> bool:
        if self.found is None and any(
            isinstance(small, cst.Assign)
            and any(isinstance(t.target, cst.Name) and t.target.value == "port" for t in small.targets)
            for small in node.body
        ):
            self.found = node
        return False


class ConnectionPoolFix(FixTransformer):
    FIX = FIX

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef) -> cst.ClassDef:
        if not is_handler_class(updated_node):
            return updated_node
        if PoolStep.USE_POOL in self.steps:
            builders = (*self.shape.client_builders, *self.shape.synced_getters)
            body = [
                self._pooled(s) if isinstance(s, cst.FunctionDef) and s.name.value in builders else s
                for s in block_statements(updated_node)
            ]
            updated_node = with_class_body(updated_node, body)
        if PoolStep.NO_RETRY in self.steps and self.shape.upstream is not None:
            retrying = self.shape.upstream.retrying_methods
            retry = DropStatements(
                lambda statement: contains_call(statement, calls_attribute("get_connection")),
                NO_RETRY_NOTE,
                in_except=True,
                through_end=True,  # what follows may use the client it asked for
            )
            updated_node = visit_methods(updated_node, dict.fromkeys(retrying, retry))
        if PoolStep.POOL_ATTRIBUTE in self.steps:
            attribute = self.statement(
                POOL_ATTRIBUTE_CODE.substitute(max_connections=self.settings.max_connections, mark=FIX.mark())
            )
            updated_node = prepend_to_method(updated_node, "__init__", [attribute])
        return updated_node

    def _pooled(self, method: cst.FunctionDef) -> cst.FunctionDef:
        """A method that built a socketio.Client, rewritten to take its client from the pool."""
        port = _FindPortStatement()
        method.visit(port)
        if port.found is None:  # the shape saw a `port = ...` that is not a plain statement of its own
            raise UnsupportedShape(f"{HANDLER_CLASS}.{method.name.value}() builds a socketio.Client but sets no `port`")
        port_code = cst.Module(body=[]).code_for_node(port.found.with_changes(leading_lines=[])).strip()
        code = CLIENT_GETTER_CODE.substitute(
            mark=FIX.mark("clients come from the shared pool"), port_statement=port_code
        )
        return method.with_changes(body=method.body.with_changes(body=self.statements(code)))

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        if PoolStep.POOL_CLASS in self.steps:
            pool = self.statements(POOL_CLASS_CODE.substitute(mark=FIX.mark(), revision=POOL_REVISION))
            if self.shape.pool_revision is None and self.shape.upstream is None:
                updated_node = insert_before(updated_node, defines(cst.ClassDef, HANDLER_CLASS), pool)
            else:  # an older pool of ours, or claude-mpm's own (3.9.4-3.9.11): the new one takes its place
                theirs = self.shape.pool_revision is None  # upstream's comments above it are not about the pool
                updated_node = replace_statement(updated_node, defines(cst.ClassDef, POOL_CLASS), pool, theirs)
        return self.add_pending_imports(updated_node)
