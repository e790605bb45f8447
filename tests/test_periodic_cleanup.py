"""periodic-cleanup: the cleanup method, the event counter and the call in handle(); and the injected
cleanup run on a handler."""

import types

import pytest

from codemods.engine import fix_source
from codemods.settings import Settings
from tests.codemod_case import PLAIN_HANDLER, SOCKETIO_HANDLER, assert_noop, edited, load_namespace, run_fix
from tests.fake_socketio import FakeClient


def test_periodic_cleanup_reads_only_the_collections_init_sets():
    before = edited(
        SOCKETIO_HANDLER,
        ("import os\n", "import os\nimport time\n"),
        (
            "\n\nclass ClaudeHookHandler:",
            "\n\nMAX_DELEGATION_TRACKING = 200\nCLEANUP_INTERVAL_EVENTS = 100\n\n\nclass ClaudeHookHandler:",
        ),
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


def test_cleanup_keeps_the_newest_entries_by_insertion_order_not_sorted_keys():
    source = fix_source(
        SOCKETIO_HANDLER.encode(), settings=Settings(max_delegation_tracking=3, cleanup_interval_events=10)
    ).source.decode()
    namespace = load_namespace(source, socketio=types.SimpleNamespace(Client=FakeClient))
    handler = namespace["ClaudeHookHandler"]()
    keys = ["zeta", "alpha", "mu", "beta", "omega"]  # sorted order differs from insertion order
    for key in keys:
        handler.active_delegations[key] = "agent"
    handler._cleanup_old_entries()
    assert list(handler.active_delegations) == ["mu", "beta", "omega"]


def test_cleanup_expires_stale_git_cache_entries_only():
    before = edited(
        SOCKETIO_HANDLER,
        (
            "self.active_delegations = {}",
            "self.active_delegations = {}\n"
            "        self._git_branch_cache = {}\n"
            "        self._git_branch_cache_time = {}",
        ),
    )
    namespace = load_namespace(
        fix_source(before.encode()).source.decode(), socketio=types.SimpleNamespace(Client=FakeClient)
    )
    handler = namespace["ClaudeHookHandler"]()
    now = namespace["time"].time()
    handler._git_branch_cache.update(old="main", new="dev")
    handler._git_branch_cache_time.update(old=now - 301, new=now - 5)
    handler._cleanup_old_entries()
    assert handler._git_branch_cache == {"new": "dev"} and list(handler._git_branch_cache_time) == ["new"]


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(PLAIN_HANDLER, id="nothing-tracked"),
        pytest.param(fix_source(SOCKETIO_HANDLER.encode()).source.decode(), id="patched-already"),
    ],
)
def test_periodic_cleanup_has_nothing_to_do(source):
    assert_noop("periodic-cleanup", source)
