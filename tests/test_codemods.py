"""Before/after tests of each fix on small handlers in the releases' shapes, and of the code they inject."""

import ast
import gc
import queue
import textwrap
import threading
import time
import types
from typing import ClassVar

import pytest

from codemods.engine import assess, fix_source
from codemods.plan import UPSTREAM_REASON
from codemods.settings import Settings
from codemods.shape import UnsupportedShape, read_marks
from codemods.status import FixStatus
from tests.codemod_case import assert_codemod, run_fix

# The 3.2-3.4 shape, cut down: a Socket.IO client per handler, one tracking dict, main() builds a handler.
SOCKETIO_HANDLER = '''\
import os

import socketio


class ClaudeHookHandler:
    def __init__(self):
        """Set up."""
        self.sio_client = None
        self.sio_connected = False
        self.active_delegations = {}

    def _get_socketio_client(self):
        """Connect."""
        # Need to create new client
        port = int(os.environ.get("CLAUDE_MPM_SOCKETIO_PORT", "8765"))
        self.sio_client = socketio.Client()
        self.sio_client.connect(f"http://localhost:{port}")
        return self.sio_client

    def handle(self):
        """Handle one event."""
        self._get_socketio_client()


def main():
    handler = ClaudeHookHandler()
    handler.handle()
'''

# The 3.0-3.1 shape: nothing tracked, no client.
PLAIN_HANDLER = '''\
import json


class ClaudeHookHandler:
    def __init__(self):
        self.event = None

    def handle(self):
        print(json.dumps({"action": "continue"}))


def main():
    """Entry point."""
    handler = ClaudeHookHandler()
    handler.handle()
'''


def test_singleton_creates_the_handler_once_under_a_lock():
    assert_codemod(
        "singleton",
        PLAIN_HANDLER,
        '''\
        import json
        import threading  # fix-memory-leaks: singleton


        class ClaudeHookHandler:
            def __init__(self):
                self.event = None

            def handle(self):
                print(json.dumps({"action": "continue"}))


        # fix-memory-leaks: singleton (the one handler of this process)
        _global_handler = None
        _handler_lock = threading.Lock()


        def main():
            """Entry point."""
            global _global_handler
            # fix-memory-leaks: singleton (reuse the process's handler instead of building one per call)
            with _handler_lock:
                if _global_handler is None:
                    _global_handler = ClaudeHookHandler()
                handler = _global_handler
            handler.handle()
        ''',
    )


def test_limits_adds_only_what_this_layouts_collections_need_with_configured_values():
    assert_codemod(
        "limits",
        SOCKETIO_HANDLER,
        SOCKETIO_HANDLER.replace(
            "\n\nclass ClaudeHookHandler:",
            """

# fix-memory-leaks: limits (bounds for what the handler keeps between events)
MAX_DELEGATION_TRACKING = 7  # entries kept in active_delegations
CLEANUP_INTERVAL_EVENTS = 100  # hook events between two cleanups


class ClaudeHookHandler:""",
        ),
        Settings(max_delegation_tracking=7),
    )


def test_limits_for_prompts_and_the_git_cache():
    before = SOCKETIO_HANDLER.replace(
        "self.active_delegations = {}",
        "self.pending_prompts = {}\n        self._git_branch_cache = {}\n        self._git_branch_cache_time = {}",
    )
    after = run_fix("limits", before)
    assert "MAX_PROMPT_TRACKING = 100  # entries kept in pending_prompts" in after
    assert "MAX_CACHE_AGE_SECONDS = 300  # seconds a git-branch cache entry is kept" in after
    assert "MAX_DELEGATION_TRACKING" not in after


def test_periodic_cleanup_reads_only_the_collections_init_sets():
    before = SOCKETIO_HANDLER.replace("import os\n", "import os\nimport time\n").replace(
        "\n\nclass ClaudeHookHandler:",
        "\n\nMAX_DELEGATION_TRACKING = 200\nCLEANUP_INTERVAL_EVENTS = 100\n\n\nclass ClaudeHookHandler:",
    )
    after = run_fix("periodic-cleanup", before)
    expected_method = '''
    # fix-memory-leaks: periodic-cleanup
    def _cleanup_old_entries(self):
        """Trim tracked collections to their limits and expire old git-branch cache entries."""
        # Dicts keep insertion order: the first keys are the oldest.
        for entries, limit in (
            (self.active_delegations, MAX_DELEGATION_TRACKING),
        ):
            for key in list(entries)[: max(len(entries) - limit, 0)]:
                del entries[key]
'''
    assert expected_method in after
    assert "pending_prompts" not in after and "_git_branch_cache" not in after
    assert "import time  # fix-memory-leaks" not in after  # already imported, and not needed without a cache
    expected_handle = '''
    def handle(self):
        """Handle one event."""
        # fix-memory-leaks: periodic-cleanup (keep a long-lived handler's state bounded)
        self.events_processed += 1
        if self.events_processed % CLEANUP_INTERVAL_EVENTS == 0:
            self._cleanup_old_entries()
        self._get_socketio_client()
'''
    assert expected_handle in after
    assert '"""Set up."""\n        self.events_processed = 0  # fix-memory-leaks: periodic-cleanup\n' in after


def test_teardown_replaces_del_with_one_that_survives_a_half_built_handler():
    before = SOCKETIO_HANDLER.replace(
        "    def handle(self):",
        "    def __del__(self):\n        self.sio_client.disconnect()\n\n    def handle(self):",
    ).replace(
        "\n\nclass ClaudeHookHandler:", "\n\nclass SocketIOConnectionPool:\n    pass\n\n\nclass ClaudeHookHandler:"
    )
    after = run_fix("teardown", before)
    assert "self.sio_client.disconnect()" not in after
    namespace = _load(after)
    half_built = namespace["ClaudeHookHandler"].__new__(namespace["ClaudeHookHandler"])
    half_built.__del__()  # no connection_pool attribute: must not raise
    closed = []
    half_built.connection_pool = types.SimpleNamespace(close_all=lambda: closed.append(True))
    half_built.__del__()
    assert closed == [True]


def test_teardown_adds_del_when_there_is_none():
    before = SOCKETIO_HANDLER.replace(
        "\n\nclass ClaudeHookHandler:", "\n\nclass SocketIOConnectionPool:\n    pass\n\n\nclass ClaudeHookHandler:"
    )
    after = run_fix("teardown", before)
    assert after.count("def __del__(self):") == 1
    assert "# fix-memory-leaks: teardown\n    def __del__(self):" in after


def test_connection_pool_rewrites_the_client_getter_and_reuses_an_existing_pool_class():
    with_pool_class = SOCKETIO_HANDLER.replace(
        "\n\nclass ClaudeHookHandler:", "\n\nclass SocketIOConnectionPool:\n    pass\n\n\nclass ClaudeHookHandler:"
    )
    assert_codemod(
        "connection-pool",
        with_pool_class,
        with_pool_class.replace(
            '''        """Set up."""
''',
            '''        """Set up."""
        self.connection_pool = SocketIOConnectionPool(max_connections=5)  # fix-memory-leaks: connection-pool
''',
        ).replace(
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
        Settings(max_connections=5),
    )


def test_connection_pool_adds_its_class_once_before_the_handler():
    after = run_fix("connection-pool", SOCKETIO_HANDLER)
    assert after.count("class SocketIOConnectionPool:") == 1
    assert after.index("class SocketIOConnectionPool:") < after.index("class ClaudeHookHandler:")
    assert "socketio.Client(" not in after.split("class ClaudeHookHandler:")[1]


class FakeEngine:
    """Stands in for engine.io's client: a send queue drained by a sender thread, as in python-engineio."""

    def __init__(self, seconds_per_packet=0.0):
        self.queue = queue.Queue()
        self.sent = []
        self.seconds_per_packet = seconds_per_packet
        self.write_loop_task = threading.Thread(target=self._send, daemon=True)
        self.write_loop_task.start()

    def _send(self):
        while True:
            packet = self.queue.get()
            if packet is None:
                self.queue.task_done()
                return
            time.sleep(self.seconds_per_packet)
            self.sent.append(packet)
            self.queue.task_done()


class FakeClient:
    """Stands in for socketio.Client: records connects, emits and disconnects."""

    made: ClassVar[list] = []
    refuse: ClassVar[bool] = False
    seconds_per_packet: ClassVar[float] = 0.0

    def __init__(self, **options):
        self.connected = False
        self.url = None
        self.eio = None
        self.goodbye = None  # what had been sent when disconnect() was called
        FakeClient.made.append(self)

    def connect(self, url, **options):
        if FakeClient.refuse:
            raise ConnectionError("refused")
        self.url = url
        self.eio = FakeEngine(FakeClient.seconds_per_packet)
        self.connected = True

    def emit(self, event, data):
        self.eio.queue.put((event, data))

    def disconnect(self):
        self.goodbye = list(self.eio.sent)
        self.connected = False
        self.eio.queue.put(None)


@pytest.fixture
def pool_namespace():
    FakeClient.made, FakeClient.refuse, FakeClient.seconds_per_packet = [], False, 0.0
    return _load(run_fix("connection-pool", SOCKETIO_HANDLER), socketio=types.SimpleNamespace(Client=FakeClient))


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
    namespace = _load(run_fix("connection-pool", SOCKETIO_HANDLER), socketio=None)
    assert namespace["SocketIOConnectionPool"]().get_connection(8765) is None


def test_cleanup_keeps_the_newest_entries_by_insertion_order_not_sorted_keys():
    source = fix_source(
        SOCKETIO_HANDLER.encode(), settings=Settings(max_delegation_tracking=3, cleanup_interval_events=10)
    ).source.decode()
    namespace = _load(source, socketio=types.SimpleNamespace(Client=FakeClient))
    handler = namespace["ClaudeHookHandler"]()
    keys = ["zeta", "alpha", "mu", "beta", "omega"]  # sorted order differs from insertion order
    for key in keys:
        handler.active_delegations[key] = "agent"
    handler._cleanup_old_entries()
    assert list(handler.active_delegations) == ["mu", "beta", "omega"]


def test_cleanup_expires_stale_git_cache_entries_only():
    before = SOCKETIO_HANDLER.replace(
        "self.active_delegations = {}",
        "self.active_delegations = {}\n        self._git_branch_cache = {}\n        self._git_branch_cache_time = {}",
    )
    namespace = _load(fix_source(before.encode()).source.decode(), socketio=types.SimpleNamespace(Client=FakeClient))
    handler = namespace["ClaudeHookHandler"]()
    now = namespace["time"].time()
    handler._git_branch_cache.update(old="main", new="dev")
    handler._git_branch_cache_time.update(old=now - 301, new=now - 5)
    handler._cleanup_old_entries()
    assert handler._git_branch_cache == {"new": "dev"} and list(handler._git_branch_cache_time) == ["new"]


def test_every_injected_fix_leaves_its_mark():
    patched = fix_source(SOCKETIO_HANDLER.encode()).source.decode()
    assert read_marks(patched) == {"connection-pool", "singleton", "limits", "periodic-cleanup", "teardown"}


def test_fixes_with_nothing_to_act_on_say_why():
    _, plans = assess(PLAIN_HANDLER.encode())
    assert plans["singleton"].status == FixStatus.PENDING
    for name in ("connection-pool", "teardown"):
        assert plans[name].status == FixStatus.NOT_APPLICABLE and "Socket.IO client" in plans[name].reason
    for name in ("limits", "periodic-cleanup"):
        assert plans[name].status == FixStatus.NOT_APPLICABLE and "active_delegations" in plans[name].reason


def test_a_partial_patch_of_ours_is_completed_not_mistaken_for_upstream():
    singleton_only = run_fix("singleton", SOCKETIO_HANDLER)
    shape, plans = assess(singleton_only.encode())
    assert not shape.upstream_fixed
    assert plans["singleton"].status == FixStatus.PRESENT and plans["connection-pool"].status == FixStatus.PENDING
    completed = fix_source(singleton_only.encode()).source.decode()
    # The same code as a patch in one go; only which fix's mark an added import carries, and so
    # the order of the added imports, may differ.
    assert _code_and_imports(completed) == _code_and_imports(fix_source(SOCKETIO_HANDLER.encode()).source.decode())


def _code_and_imports(source: str):
    tree = ast.parse(source)
    imports = sorted(ast.dump(node) for node in tree.body if isinstance(node, ast.Import))
    tree.body = [node for node in tree.body if not isinstance(node, ast.Import)]
    return ast.dump(tree), imports


def test_upstream_fixed_file_is_left_alone():
    upstream = SOCKETIO_HANDLER.replace("\n\ndef main():", "\n\n_global_handler = None\n\n\ndef main():")
    outcome = fix_source(upstream.encode())
    assert outcome.source == upstream.encode() and not outcome.applied
    assert {plan.reason for plan in outcome.plans.values()} == {UPSTREAM_REASON}


ONE_LINE_MAIN = PLAIN_HANDLER.split("def main():")[0] + "def main(): handler = ClaudeHookHandler(); handler.handle()\n"


@pytest.mark.parametrize(
    ("source", "missing"),
    [
        ("def main():\n    pass\n", "no class ClaudeHookHandler"),
        (PLAIN_HANDLER.replace("    def handle(self):", "    def other(self):"), "no handle() method"),
        (PLAIN_HANDLER.replace("def main():", "def start():"), "no top-level main()"),
        (PLAIN_HANDLER.replace("handler = ClaudeHookHandler()", "handler = make()"), "main() does not create"),
        (SOCKETIO_HANDLER.replace("port = int(", "where = int(").replace("{port}", "{where}"), "sets no `port`"),
        (SOCKETIO_HANDLER.replace("        port = int(", "        if True: port = int("), "sets no `port`"),
        (ONE_LINE_MAIN, "main has its whole body on one line"),
    ],
)
def test_unknown_shapes_are_refused_with_what_was_missing(source, missing):
    with pytest.raises(UnsupportedShape, match=missing.replace("(", r"\(").replace(")", r"\)")):
        fix_source(source.encode())


def test_crlf_and_tab_indented_handlers_keep_their_style():
    tabbed = SOCKETIO_HANDLER.replace("        ", "\t\t").replace("    ", "\t").replace("\n", "\r\n")
    patched = fix_source(tabbed.encode()).source
    assert patched.count(b"\r\n") == patched.count(b"\n")
    assert not any(line.startswith(b" ") for line in patched.split(b"\r\n") if line.strip())
    compile(patched, "patched", "exec")


def _load(source: str, **injected) -> dict:
    """Execute a patched handler's text as a module namespace (``injected`` replaces its imports)."""
    namespace = {"__name__": "patched_handler"}
    code = compile(textwrap.dedent(source), "patched_handler", "exec")
    if "socketio" in injected:
        code = compile(source.replace("import socketio\n", ""), "patched_handler", "exec")
    namespace.update(injected)
    exec(code, namespace)
    return namespace
