"""Decide, per fix, whether it is pending, present or not applicable, and which steps remain.

What every planner shares. Pure standard library: ``check`` runs only this, the fixes' planners
and ``shape``. A fix is made of small steps that are each done or not, so a partial patch
(``--select``, a hand edit) is completed without duplicating anything. Each fix's steps
``Enum`` and planner live in its own package (``codemods/fixes/<fix>/__init__.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol, TypeVar

from ..reading.features import Shape
from ..status import FixStatus

# Said of every fix on 4.x and later, whether or not the file's note says that its hook breaks.
UPSTREAM_REASON = (
    "claude-mpm's own code (4.x+ keeps its own _global_handler, and its connection pool outside this file): "
    "none of these fixes applies"
)
NO_COLLECTIONS = (
    "nothing to bound: __init__ keeps no active_delegations, delegation_requests, pending_prompts or git cache"
)
NO_CLIENT = "the handler builds no Socket.IO client"

Step = TypeVar("Step", bound=Enum)


class Planned(Protocol):
    """What a planner's helpers read of a fix's record (``record.Fix``)."""

    @property
    def name(self) -> str: ...

    @property
    def steps(self) -> type[Enum]: ...

    @property
    def imports(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Plan:
    """One fix's verdict on one file: what is left to do (``steps``, and the modules to import)."""

    name: str
    status: FixStatus
    reason: str = ""
    steps: frozenset[Enum] = field(default_factory=frozenset)
    imports: tuple[str, ...] = ()  # modules the fix's code uses that the file does not bind, to be imported


def not_applicable(fix: Planned, reason: str) -> Plan:
    return Plan(fix.name, FixStatus.NOT_APPLICABLE, reason)


def verdict(fix: Planned, steps: Iterable[Enum], imports: Iterable[str] = (), reason: str = "") -> Plan:
    """Pending with what is left, or present when nothing is; a step of another fix is a bug, caught here."""
    steps = frozenset(steps)
    foreign = [step for step in steps if not isinstance(step, fix.steps)]
    if foreign:
        raise TypeError(f"{fix.name}: {foreign[0]!r} is not one of its steps ({fix.steps.__name__})")
    imports = tuple(imports)
    if not steps and not imports:
        return Plan(fix.name, FixStatus.PRESENT)
    return Plan(fix.name, FixStatus.PENDING, reason, steps, imports)


def missing_imports(shape: Shape, fix: Planned) -> list[str]:
    """Each module the fix's code uses (``fix.imports``) that the file does not bind."""
    return [name for name in fix.imports if name not in shape.module_names]


def upstream_verdict(
    fix: Planned, steps: Sequence[Step], imports: Iterable[str], repairs: Mapping[Step, tuple[object, str]]
) -> Plan:
    """A fix's verdict on claude-mpm's own 3.9.4-3.9.11 fix: each repair still needed adds its step and its reason."""
    needed = {step: reason for step, (wanted, reason) in repairs.items() if wanted}
    reasons = "; ".join(dict.fromkeys(needed.values()))
    return verdict(fix, [*steps, *(step for step in needed if step not in steps)], imports, reasons)
