"""teardown: its transformer alone, on full texts (it needs no pool to be written), and the injected
``__del__`` run on a half-built handler."""

import types

import pytest

from tests.codemod_case import (
    PLAIN_HANDLER,
    SOCKETIO_HANDLER,
    assert_codemod,
    assert_noop,
    edited,
    load_namespace,
    run_transformer,
)

DEL_CODE = '''
    # fix-memory-leaks: teardown
    def __del__(self):
        """Close the pooled Socket.IO clients when the handler goes away."""
        # During interpreter finalization close_all() only lets go: the pool closed its clients at exit.
        pool = getattr(self, "connection_pool", None)  # missing if __init__ failed half-way
        if pool is not None:
            try:
                pool.close_all()
            except Exception:
                pass
'''
OWN_DEL = "    def __del__(self):\n        self.sio_client.disconnect()\n\n"


def test_teardown_replaces_del_with_one_that_survives_a_half_built_handler():
    before = edited(SOCKETIO_HANDLER, ("    def handle(self):", OWN_DEL + "    def handle(self):"))
    expected = edited(SOCKETIO_HANDLER, ("\n    def handle(self):", DEL_CODE + "\n    def handle(self):"))
    assert_codemod("teardown", before, expected)
    after = run_transformer("teardown", before)
    assert "self.sio_client.disconnect()" not in after
    namespace = load_namespace(after)
    half_built = namespace["ClaudeHookHandler"].__new__(namespace["ClaudeHookHandler"])
    half_built.__del__()  # no connection_pool attribute: must not raise
    closed = []
    half_built.connection_pool = types.SimpleNamespace(close_all=lambda: closed.append(True))
    half_built.__del__()
    assert closed == [True]


def test_teardown_adds_del_when_there_is_none():
    expected = edited(
        SOCKETIO_HANDLER, ("        self._get_socketio_client()\n", "        self._get_socketio_client()\n" + DEL_CODE)
    )
    assert_codemod("teardown", SOCKETIO_HANDLER, expected)
    after = run_transformer("teardown", SOCKETIO_HANDLER)
    assert after.count("def __del__(self):") == 1
    assert "# fix-memory-leaks: teardown\n    def __del__(self):" in after


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(PLAIN_HANDLER, id="no-socketio-client"),
        pytest.param(run_transformer("teardown", SOCKETIO_HANDLER), id="patched-already"),
        pytest.param(
            edited(
                SOCKETIO_HANDLER,
                (
                    "    def handle(self):",
                    "    def __del__(self):\n        self.connection_pool.close_all()\n\n    def handle(self):",
                ),
            ),
            id="del-closes-the-pool-already",
        ),
    ],
)
def test_teardown_has_nothing_to_do(source):
    assert_noop("teardown", source)
