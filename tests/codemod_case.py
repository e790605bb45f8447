"""Before/after checks for one fix, in the spirit of LibCST's ``CodemodTest.assertCodemod``."""

from __future__ import annotations

import textwrap

from codemods.engine import fix_source
from codemods.settings import Settings


def run_fix(fix: str, before: str, settings: Settings = Settings()) -> str:
    """The text after running only ``fix`` on ``before`` (dedented), through the real engine."""
    outcome = fix_source(textwrap.dedent(before).encode(), select=(fix,), settings=settings)
    return outcome.source.decode()


def assert_codemod(fix: str, before: str, after: str, settings: Settings = Settings()) -> None:
    """Running ``fix`` on ``before`` gives exactly ``after``; running it again changes nothing."""
    expected = textwrap.dedent(after)
    actual = run_fix(fix, before, settings)
    assert actual == expected, "\n" + actual
    assert run_fix(fix, actual, settings) == actual, "a second run changed the file"
