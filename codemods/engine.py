"""The pure core: source bytes in, patched source bytes and a per-fix report out.

One parse, the pending fixes as transformers over that one tree, one code generation,
then a compile and a re-inspection of the result. No file is read or written here.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass

from .damage import inspect_refusing_damage
from .plan import FIX_NAMES, PENDING, Plan, plan_fixes, resolve_selection
from .settings import Settings
from .shape import Shape, read_marks

TRANSFORMERS = {
    "connection-pool": ("connection_pool", "ConnectionPoolFix"),
    "singleton": ("singleton", "SingletonFix"),
    "limits": ("limits", "LimitsFix"),
    "periodic-cleanup": ("periodic_cleanup", "PeriodicCleanupFix"),
    "teardown": ("teardown", "TeardownFix"),
}
assert tuple(TRANSFORMERS) == FIX_NAMES


class VerificationError(Exception):
    """The patched text does not compile, or a fix did not leave its mark: nothing may be written."""


@dataclass(frozen=True)
class Outcome:
    """What fixing one source produced: the new bytes and each fix's verdict before the run."""

    source: bytes
    shape: Shape
    plans: dict[str, Plan]
    applied: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.applied)


def transformer_class(name: str):
    """The LibCST transformer of a fix (imports libcst)."""
    module, cls = TRANSFORMERS[name]
    return getattr(importlib.import_module(f"{__package__}.{module}"), cls)


def assess(source: bytes) -> tuple[Shape, dict[str, Plan]]:
    """Each fix's verdict on ``source``: standard library only, for ``check``; raises ScriptDamage too."""
    shape = inspect_refusing_damage(source)
    return shape, plan_fixes(shape)


def fix_source(source: bytes, select: Sequence[str] = FIX_NAMES, settings: Settings = Settings()) -> Outcome:
    """Apply the selected pending fixes to ``source``; raise SyntaxError, UnsupportedShape, ScriptDamage or
    VerificationError."""
    shape, plans = assess(source)
    select, _ = resolve_selection(select)  # a fix never runs without what it needs, whoever calls
    todo = tuple(name for name in select if plans[name].status == PENDING)
    if not todo:
        return Outcome(source, shape, plans, ())
    import libcst

    module = libcst.parse_module(source)
    for name in todo:
        module = module.visit(transformer_class(name)(plans[name].steps, settings, module, shape))
    patched = module.bytes
    verify(patched, todo)
    return Outcome(patched, shape, plans, todo)


def verify(patched: bytes, fixes: Sequence[str]) -> None:
    """The patched source compiles and carries the mark of every fix just applied."""
    try:
        compile(patched, "<patched hook handler>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as error:
        raise VerificationError(f"the patched file does not compile: {error}") from error
    missing = set(fixes) - read_marks(patched.decode("utf-8", errors="replace"))
    if missing:
        raise VerificationError(f"fix {sorted(missing)[0]} left no mark in the patched file")
