"""limits: the constants a layout's collections need, with the configured values."""

import pytest

from codemods.settings import Settings
from tests.codemod_case import PLAIN_HANDLER, SOCKETIO_HANDLER, assert_codemod, assert_noop, edited, run_fix


def test_limits_adds_only_what_this_layouts_collections_need_with_configured_values():
    assert_codemod(
        "limits",
        SOCKETIO_HANDLER,
        edited(
            SOCKETIO_HANDLER,
            (
                "\n\nclass ClaudeHookHandler:",
                """

# fix-memory-leaks: limits (bounds for what the handler keeps between events)
MAX_DELEGATION_TRACKING = 7  # entries kept in active_delegations
CLEANUP_INTERVAL_EVENTS = 100  # hook events between two cleanups


class ClaudeHookHandler:""",
            ),
        ),
        Settings(max_delegation_tracking=7),
    )


def test_limits_for_prompts_and_the_git_cache():
    before = edited(
        SOCKETIO_HANDLER,
        (
            "self.active_delegations = {}",
            "self.pending_prompts = {}\n        self._git_branch_cache = {}\n        self._git_branch_cache_time = {}",
        ),
    )
    after = run_fix("limits", before)
    assert "MAX_PROMPT_TRACKING = 100  # entries kept in pending_prompts" in after
    assert "MAX_CACHE_AGE_SECONDS = 300  # seconds a git-branch cache entry is kept" in after
    assert "MAX_DELEGATION_TRACKING" not in after


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(PLAIN_HANDLER, id="nothing-tracked"),
        pytest.param(run_fix("limits", SOCKETIO_HANDLER), id="patched-already"),
    ],
)
def test_limits_have_nothing_to_do(source):
    assert_noop("limits", source)
