"""The pure core: source bytes in, patched source bytes and a per-fix report out.

One parse, the pending fixes as transformers over that one tree (in registry order), one
code generation, then a compile and a re-inspection of the result. No file is read or
written here. A handler damaged by claude-mpm's own fix script is an answer (``Damaged``),
not an exception: the caller chooses the repair by looking at the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .fixes.plan import Plan
from .fixes.registry import BY_NAME, FIX_NAMES, plan_fixes, resolve_selection
from .reading.damage import ScriptDamage, inspect_refusing_damage
from .reading.shape import Shape, read_marks
from .settings import Settings
from .status import FixStatus


class VerificationError(Exception):
    """The patched text does not compile, or a fix did not leave its mark: nothing may be written."""


@dataclass(frozen=True)
class Assessment:
    """What a handler is and each fix's verdict on it."""

    shape: Shape
    plans: dict[str, Plan]


@dataclass(frozen=True)
class Damaged:
    """A handler claude-mpm's fix_memory_leaks.py broke: what is broken (``apply`` rebuilds it from its backup)."""

    symptoms: tuple[str, ...]

    def __str__(self) -> str:
        return "; ".join(self.symptoms)


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


def diagnose(source: bytes) -> Assessment | Damaged:
    """Each fix's verdict on ``source``, or the script's damage: standard library only, for ``check``.

    Raises SyntaxError or UnsupportedShape for a file that is no known handler."""
    try:
        shape = inspect_refusing_damage(source)
    except ScriptDamage as damage:
        return Damaged(damage.symptoms)
    return Assessment(shape, plan_fixes(shape))


def assess(source: bytes) -> tuple[Shape, dict[str, Plan]]:
    """``diagnose`` for callers that know the file is no damaged handler: raises ScriptDamage if it is."""
    found = diagnose(source)
    if isinstance(found, Damaged):
        raise ScriptDamage(found.symptoms)
    return found.shape, found.plans


def fix_or_diagnose(
    source: bytes, select: Sequence[str] = FIX_NAMES, settings: Settings = Settings()
) -> Outcome | Damaged:
    """Apply the selected pending fixes to ``source``, or say how the script damaged it; raise SyntaxError,
    UnsupportedShape or VerificationError."""
    found = diagnose(source)
    if isinstance(found, Damaged):
        return found
    shape, plans = found.shape, found.plans
    select, _ = resolve_selection(select)  # a fix never runs without what it needs, whoever calls
    todo = tuple(name for name in select if plans[name].status == FixStatus.PENDING)
    if not todo:
        return Outcome(source, shape, plans, ())
    import libcst

    module = libcst.parse_module(source)
    for name in todo:
        module = module.visit(BY_NAME[name].transformer_class()(plans[name], settings, module, shape))
    patched = module.bytes
    verify(patched, todo)
    return Outcome(patched, shape, plans, todo)


def fix_source(source: bytes, select: Sequence[str] = FIX_NAMES, settings: Settings = Settings()) -> Outcome:
    """``fix_or_diagnose`` for callers that know the file is no damaged handler: raises ScriptDamage if it is."""
    done = fix_or_diagnose(source, select, settings)
    if isinstance(done, Damaged):
        raise ScriptDamage(done.symptoms)
    return done


def verify(patched: bytes, fixes: Sequence[str]) -> None:
    """The patched source compiles and carries the mark of every fix just applied."""
    try:
        compile(patched, "<patched hook handler>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as error:
        raise VerificationError(f"the patched file does not compile: {error}") from error
    missing = set(fixes) - read_marks(patched.decode("utf-8", errors="replace"))
    if missing:
        raise VerificationError(f"fix {sorted(missing)[0]} left no mark in the patched file")
