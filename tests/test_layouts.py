"""The layouts table: each row's predicate on the fixtures and on every real release of the corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import corpus
from codemods.reading.layouts import LAYOUTS, Treatment, layout_of
from codemods.reading.shape import inspect

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
HANDLER = Path("claude_mpm", "hooks", "claude_hooks", "hook_handler.py")
# fixture folder -> the row its handler (and the expected, patched one) is
FIXTURE_LAYOUTS = {
    "shape-3.0": "3.0-3.1 (no Socket.IO client, no tracking)",
    "shape-3.8": "3.6-3.9.2 (Socket.IO, delegations, prompts)",
    "shape-3.8-patched-by-0.1.0": "3.6-3.9.2 (Socket.IO, delegations, prompts)",
    "shape-3.9.9-upstream": "claude-mpm's own fix 3.9.9-3.9.11 (+ alarm, exit in main())",
}


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _seen_in(version: str, seen: str) -> bool:
    """``A``, ``A-B`` or ``A+`` holds ``version``."""
    if seen.endswith("+"):
        return _release(version) >= _release(seen[:-1])
    first, _, last = seen.partition("-")
    return _release(first) <= _release(version) <= _release(last or first)


def test_the_names_are_the_ones_printed_and_each_row_is_one_name():
    names = [layout.name for layout in LAYOUTS]
    assert len(set(names)) == len(names)
    assert "fixed upstream (4.x+)" in names and "3.2-3.4 (Socket.IO, delegations)" in names


@pytest.mark.parametrize("folder", sorted(FIXTURE_LAYOUTS))
def test_each_fixture_is_the_row_of_its_shape_before_and_after_the_fix(folder):
    for source in (FIXTURES / folder / HANDLER, FIXTURES / folder / "expected_hook_handler.py"):
        shape = inspect(source.read_bytes())
        assert shape.layout == layout_of(shape).name == FIXTURE_LAYOUTS[folder], source


def test_every_real_release_is_the_row_it_was_seen_in_and_every_row_is_seen(releases):
    hit = set()
    for version, path in releases.items():
        shape = inspect(path.read_bytes())
        row = layout_of(shape)
        assert any(_seen_in(version, seen) for seen in row.seen_in), (version, row.name)
        assert shape.layout == row.name
        assert (row.treatment is Treatment.LEAVE) == (version in corpus.LEFT_ALONE), version
        hit.add(row.name)
    assert hit == {layout.name for layout in LAYOUTS}
