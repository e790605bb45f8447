"""connection-pool: one small pool of Socket.IO clients instead of a new client per event."""

from __future__ import annotations

from string import Template
from typing import Optional

import libcst as cst

from .base import (
    FixTransformer,
    block_statements,
    defines,
    insert_before,
    is_handler_class,
    mark,
    prepend_to_method,
    with_class_body,
)
from .shape import HANDLER_CLASS, UnsupportedShape

POOL_CLASS_CODE = Template('''
$mark
class SocketIOConnectionPool:
    """At most ``max_connections`` live Socket.IO clients, one per port, reused across events.

    The handler used to build a new client for each event and never close it. The pool
    hands out the live client of a port, forgets clients that died, and closes the
    oldest one when it is full.
    """

    def __init__(self, max_connections=3):
        self.max_connections = max_connections
        self.connections = {}  # port -> client, oldest first

    def get_connection(self, port):
        """A connected client for ``port``, or None when no server answers there."""
        self._drop_dead_connections()
        client = self.connections.get(port)
        if client is not None:
            return client
        while self.connections and len(self.connections) >= self.max_connections:
            oldest_port = next(iter(self.connections))
            self._close(self.connections.pop(oldest_port))
        client = self._connect(port)
        if client is not None:
            self.connections[port] = client
        return client

    def close_all(self):
        """Disconnect every pooled client."""
        for client in self.connections.values():
            self._close(client)
        self.connections.clear()

    def _connect(self, port):
        if socketio is None:
            return None
        client = socketio.Client(reconnection=False, logger=False, engineio_logger=False)
        try:
            client.connect(f"http://localhost:{port}", wait_timeout=1)
        except Exception:
            self._close(client)
            return None
        return client if client.connected else None

    def _drop_dead_connections(self):
        for port, client in list(self.connections.items()):
            if not client.connected:
                self._close(self.connections.pop(port))

    @staticmethod
    def _close(client):
        try:
            client.disconnect()
        except Exception:
            pass
''')

POOL_ATTRIBUTE_CODE = Template(
    "self.connection_pool = SocketIOConnectionPool(max_connections=$max_connections)  $mark"
)

CLIENT_GETTER_CODE = Template('''
"""Return a pooled Socket.IO client, or None (no server)."""
$mark
$port_statement
$body
''')

SYNCED_RETURN = """\
self.sio_client = self.connection_pool.get_connection(port)
self.sio_connected = self.sio_client is not None
return self.sio_client"""

PLAIN_RETURN = "return self.connection_pool.get_connection(port)"


class _FindPortStatement(cst.CSTVisitor):
    """The first ``port = ...`` statement of a method: the pool must connect where the handler did."""

    def __init__(self) -> None:
        self.found: Optional[cst.SimpleStatementLine] = None

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> bool:
        if self.found is None and any(
            isinstance(small, cst.Assign)
            and any(isinstance(t.target, cst.Name) and t.target.value == "port" for t in small.targets)
            for small in node.body
        ):
            self.found = node
        return False


class ConnectionPoolFix(FixTransformer):
    NAME = "connection-pool"
    DESCRIPTION = (
        "Add SocketIOConnectionPool (at most max_connections live clients, dead ones dropped); "
        "the handler gets its Socket.IO client from the pool instead of building one per event."
    )

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef) -> cst.ClassDef:
        if not is_handler_class(updated_node):
            return updated_node
        if "use-pool" in self.steps:
            builders = self.shape.client_builders
            body = [
                self._pooled(s) if isinstance(s, cst.FunctionDef) and s.name.value in builders else s
                for s in block_statements(updated_node)
            ]
            updated_node = with_class_body(updated_node, body)
        if "pool-attribute" in self.steps:
            attribute = self.statement(
                POOL_ATTRIBUTE_CODE.substitute(max_connections=self.settings.max_connections, mark=mark(self.NAME))
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
        syncs_attributes = "sio_client" in self.shape.init_attrs
        code = CLIENT_GETTER_CODE.substitute(
            mark=mark(self.NAME, "clients come from the shared pool"),
            port_statement=port_code,
            body=SYNCED_RETURN if syncs_attributes else PLAIN_RETURN,
        )
        return method.with_changes(body=method.body.with_changes(body=self.statements(code)))

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        if "pool-class" not in self.steps:
            return updated_node
        pool = self.statements(POOL_CLASS_CODE.substitute(mark=mark(self.NAME)))
        return insert_before(updated_node, defines(cst.ClassDef, HANDLER_CLASS), pool)

