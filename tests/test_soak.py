"""Soak: hundreds of hook calls through each patched Socket.IO layout, against a real server.

Every layout of ``corpus.SOCKETIO_LAYOUTS`` is patched with ``fix_source`` and driven in one
process (see ``bench.soak_harness``): the pool must keep connections at ``max_connections``, every
call must still answer "continue" and reach the server, and the periodic cleanup must keep
the tracked collections and the git-branch cache bounded while ``bench.soak_harness.Growth`` fills them.
"""

from __future__ import annotations

import contextlib

import pytest

from bench import corpus
from bench.soak_harness import SOAK_CALLS, SOAK_SETTINGS, soak
from codemods.engine import fix_source
from codemods.reading.shape import TRACKED_COLLECTIONS
from fixer.verify import expected_deliveries

pytestmark = pytest.mark.soak

LIMITS = {attr: SOAK_SETTINGS.limit(constant) for attr, constant in TRACKED_COLLECTIONS.items()}
# A hook call adds at most one key to a tracked dict by itself, and bench.soak_harness.Growth adds one more.
NEW_KEYS_PER_CALL = 2
GROWN = ("delegation_requests", "pending_prompts")
CONTRAST_CALLS = 100


TRANSPORTS = ("websocket", "polling")


@contextlib.contextmanager
def transport(name: str):
    """Make the Socket.IO clients use ``name``: without websocket-client (claude-mpm's own
    dependencies) engine.io stays on HTTP long-polling, with it the client upgrades."""
    import engineio.client

    with pytest.MonkeyPatch.context() as patch:
        if name == "polling":
            patch.setattr(engineio.client, "websocket", None)
        yield


@pytest.fixture(scope="module", params=[(v, t) for v in corpus.SOCKETIO_LAYOUTS for t in TRANSPORTS], ids="-".join)
def soaked(request, releases):
    """(original source, result of SOAK_CALLS calls through the patched handler) for one layout and transport."""
    version, transport_name = request.param
    original = releases[version].read_bytes()
    patched = fix_source(original, settings=SOAK_SETTINGS).source
    with transport(transport_name):
        run = soak(patched, SOAK_CALLS, label=version, max_cache_age=SOAK_SETTINGS.max_cache_age_seconds)
    assert set(run.transports) == {transport_name}, "the soak did not run over the transport it names"
    return original, run


def test_connections_stay_within_the_pool(soaked):
    _, run = soaked
    assert 1 <= run.connections_opened <= SOAK_SETTINGS.max_connections
    assert run.peak_concurrent <= SOAK_SETTINGS.max_connections
    assert run.open_at_end == 0, "the pool's clients stay connected after the handler is gone"


def test_every_call_answers_continue(soaked):
    _, run = soaked
    assert run.errors == 0, run.error_examples
    assert run.replies_ok == SOAK_CALLS


def test_every_emitting_call_reaches_the_server(soaked):
    original, run = soaked
    assert dict(run.delivered) == expected_deliveries(original, run.sent)


def test_tracked_collections_stay_bounded(soaked):
    _, run = soaked
    interval = SOAK_SETTINGS.cleanup_interval_events
    assert run.cleanups == SOAK_CALLS // interval
    tracked = [attr for attr in LIMITS if attr in run.peak_sizes]
    assert "active_delegations" in tracked
    for attr in tracked:
        limit = LIMITS[attr]
        assert run.peak_sizes[attr] <= limit + NEW_KEYS_PER_CALL * interval, attr
        assert run.after_cleanup_sizes[attr] <= limit + 1, f"{attr} was not trimmed to its limit"
        if attr in GROWN:
            assert run.peak_sizes[attr] > limit, f"{attr} never reached its limit: the soak proves nothing"


def test_stale_git_branch_cache_entries_are_expired(soaked):
    _, run = soaked
    interval = SOAK_SETTINGS.cleanup_interval_events
    assert 0 < run.peak_stale <= interval
    assert run.stale_after_cleanup == 0


def test_unpatched_handler_opens_a_connection_per_call(releases):
    """The contrast: the same calls through the unpatched 3.8.1 handler connect again every time."""
    run = soak(releases["3.8.1"].read_bytes(), CONTRAST_CALLS, label="3.8.1 unpatched")
    assert run.errors == 0, run.error_examples
    assert run.connections_opened >= 0.9 * CONTRAST_CALLS > SOAK_SETTINGS.max_connections
