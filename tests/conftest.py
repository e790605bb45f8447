import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import corpus  # noqa: E402


def _corpus_or_fail(versions):
    try:
        return corpus.fetch_all(versions)
    except corpus.CorpusUnavailable as error:
        if os.environ.get("CI"):
            pytest.fail(f"the real-release corpus is required in CI: {error}")
        pytest.skip(f"real releases unavailable: {error}")


@pytest.fixture(scope="session")
def releases():
    """Every release of the corpus: version -> path of its cached hook_handler.py."""
    return _corpus_or_fail(corpus.ALL_RELEASES)


@pytest.fixture
def real_handler(tmp_path):
    """Copy a real release's handler into a claude-mpm-like folder tree; returns its path."""

    def make(version: str) -> Path:
        _corpus_or_fail([version])
        target = tmp_path / version / "claude_mpm" / "hooks" / "claude_hooks" / "hook_handler.py"
        target.parent.mkdir(parents=True)
        target.write_bytes(corpus.handler(version))
        return target

    return make
