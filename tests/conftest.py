import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import corpus  # noqa: E402


def _required(fetch, *args):
    """What ``fetch`` downloads or builds from the package index: in CI a failure fails the test, elsewhere it skips."""
    try:
        return fetch(*args)
    except corpus.CorpusUnavailable as error:
        if os.environ.get("CI"):
            pytest.fail(f"the real-release corpus is required in CI: {error}")
        pytest.skip(f"real releases unavailable: {error}")


def _corpus_or_fail(versions):
    return _required(corpus.fetch_all, versions)


@pytest.fixture(scope="session")
def required():
    """``required(fetch, *args)``: a real release, install or package, or fail (CI) / skip (elsewhere)."""
    return _required


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
