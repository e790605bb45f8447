"""singleton: before/after on the 3.0-3.1 shape, and where it has nothing to do."""

import pytest

from tests.codemod_case import PLAIN_HANDLER, assert_codemod, assert_noop, edited, run_fix


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


SINGLETON_IN_PLACE = edited(
    PLAIN_HANDLER,
    ("import json\n", "import json\nimport threading\n"),
    ("\n\ndef main():", "\n\n_global_handler = None\n_handler_lock = threading.Lock()\n\n\ndef main():"),
)


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(run_fix("singleton", PLAIN_HANDLER), id="patched-already"),
        pytest.param(
            edited(SINGLETON_IN_PLACE, ("    handler = ClaudeHookHandler()\n", "    handler = _global_handler\n")),
            id="upstream-fixed",
        ),
    ],
)
def test_singleton_has_nothing_to_do(source):
    assert_noop("singleton", source)
