"""connection-pool: before/after on the 3.2-3.4 shape, and the injected pool run against fake clients."""

import gc
import time
import types

import pytest

from codemods.settings import Settings
from tests.codemod_case import (
    PLAIN_HANDLER,
    SOCKETIO_HANDLER,
    assert_codemod,
    assert_noop,
    edited,
    load_namespace,
    run_fix,
)
from tests.fake_socketio import FakeClient


def test_connection_pool_rewrites_the_client_getter_and_reuses_an_existing_pool_class():
    with_pool_class = edited(
        SOCKETIO_HANDLER,
        ("\n\nclass ClaudeHookHandler:", "\n\nclass SocketIOConnectionPool:\n    pass\n\n\nclass ClaudeHookHandler:"),
    )
    assert_codemod(
        "connection-pool",
        with_pool_class,
        edited(
            with_pool_class,
            (
                '''        """Set up."""
''',
                '''        """Set up."""
        self.connection_pool = SocketIOConnectionPool(max_connections=5)  # fix-memory-leaks: connection-pool
''',
            ),
            (
                '''        """Connect."""
        # Need to create new client
        port = int(os.environ.get("CLAUDE_MPM_SOCKETIO_PORT", "8765"))
        self.sio_client = socketio.Client()
        self.sio_client.connect(f"http://localhost:{port}")
        return self.sio_client''',
                '''        """Return the pooled Socket.IO client, or None (no server)."""
        # fix-memory-leaks: connection-pool (clients come from the shared pool)
        # The pool owns and closes the client; self.sio_client stays unset, so that no other
        # code disconnects it in a way that blocks the hook or drops its queued events.
        port = int(os.environ.get("CLAUDE_MPM_SOCKETIO_PORT", "8765"))
        return self.connection_pool.get_connection(port)''',
            ),
        ),
        Settings(max_connections=5),
    )


def test_connection_pool_adds_its_class_once_before_the_handler():
    after = run_fix("connection-pool", SOCKETIO_HANDLER)
    assert after.count("class SocketIOConnectionPool:") == 1
    assert after.index("class SocketIOConnectionPool:") < after.index("class ClaudeHookHandler:")
    assert "socketio.Client(" not in after.split("class ClaudeHookHandler:")[1]


@pytest.fixture
def pool_namespace():
    FakeClient.made, FakeClient.refuse, FakeClient.seconds_per_packet = [], False, 0.0
    return load_namespace(
        run_fix("connection-pool", SOCKETIO_HANDLER), socketio=types.SimpleNamespace(Client=FakeClient)
    )


@pytest.fixture
def pool_class(pool_namespace):
    return pool_namespace["SocketIOConnectionPool"]


def test_pool_reuses_a_live_client_per_port(pool_class):
    pool = pool_class(max_connections=3)
    first = pool.get_connection(8765)
    assert pool.get_connection(8765) is first
    assert len(FakeClient.made) == 1 and first.url == "http://localhost:8765"


def test_pool_never_holds_more_than_max_connections(pool_class):
    pool = pool_class(max_connections=3)
    for port in range(8000, 8010):
        pool.get_connection(port)
    assert sum(client.connected for client in FakeClient.made) == 3
    assert len(pool.connections) == 3


def test_pool_replaces_a_dead_client_and_closes_all(pool_class):
    pool = pool_class(max_connections=2)
    first = pool.get_connection(1)
    first.connected = False  # the server went away
    second = pool.get_connection(1)
    assert second is not first and second.connected
    pool.close_all()
    assert not any(client.connected for client in FakeClient.made) and pool.connections == {}


def test_pool_replaces_a_client_whose_sender_stopped(pool_class):
    """Over long-polling the sender dies on a refused POST while ``connected`` stays true."""
    pool = pool_class()
    first = pool.get_connection(1)
    first.eio.queue.put(None)
    first.eio.write_loop_task.join(1)
    assert first.connected
    assert pool.get_connection(1) is not first


def test_pool_does_not_retry_a_port_that_just_failed(pool_class):
    pool = pool_class()
    FakeClient.refuse = True
    assert pool.get_connection(1) is None
    FakeClient.refuse = False
    assert pool.get_connection(1) is None, "a second connect attempt within RETRY_AFTER"
    assert len(FakeClient.made) == 1
    pool._failed_at[1] -= pool_class.RETRY_AFTER
    assert pool.get_connection(1) is not None


def test_close_all_sends_what_is_queued_before_saying_goodbye(pool_class):
    FakeClient.seconds_per_packet = 0.01
    pool = pool_class()
    client = pool.get_connection(1)
    for number in range(5):
        client.emit("claude_event", number)
    pool.close_all()
    assert client.goodbye == [("claude_event", number) for number in range(5)]
    assert not client.eio.write_loop_task.is_alive()


def test_close_all_gives_up_at_its_time_bound(pool_class):
    FakeClient.seconds_per_packet = 10.0  # a server that never answers
    pool = pool_class()
    pool.get_connection(1).emit("claude_event", "stuck")
    started = time.monotonic()
    pool.close_all()
    assert time.monotonic() - started < pool_class.CLOSE_TIMEOUT + 1.0


def test_get_connection_waits_while_the_send_queue_is_full(pool_class):
    FakeClient.seconds_per_packet = 0.005
    pool = pool_class()
    client = pool.get_connection(1)
    for number in range(3 * pool_class.MAX_QUEUED):
        client.emit("claude_event", number)
    assert pool.get_connection(1) is client
    assert client.eio.queue.qsize() < pool_class.MAX_QUEUED


def test_close_all_during_finalization_does_not_wait_on_frozen_threads(pool_namespace):
    pool = pool_namespace["SocketIOConnectionPool"]()
    client = pool.get_connection(1)
    pool_namespace["sys"] = types.SimpleNamespace(is_finalizing=lambda: True)
    pool.close_all()
    assert client.goodbye is None and pool.connections == {}


def test_a_dropped_pool_closes_its_clients(pool_class):
    pool = pool_class()
    client = pool.get_connection(1)
    del pool
    gc.collect()
    assert not client.connected and client.goodbye == []


def test_pool_returns_none_without_socketio():
    namespace = load_namespace(run_fix("connection-pool", SOCKETIO_HANDLER), socketio=None)
    assert namespace["SocketIOConnectionPool"]().get_connection(8765) is None


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(PLAIN_HANDLER, id="no-socketio-client"),
        pytest.param(run_fix("connection-pool", SOCKETIO_HANDLER), id="patched-already"),
    ],
)
def test_connection_pool_has_nothing_to_do(source):
    assert_noop("connection-pool", source)
