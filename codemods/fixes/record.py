"""A fix's record: what the registry lists, one per fix package (``codemods/fixes/<fix>/__init__.py``)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable

from ..reading.features import MARK_PREFIX, Shape
from .plan import Plan


@dataclass(frozen=True)
class Fix:
    """One fix. Its name is part of the contract (CLI, config, JSON, the marks in patched files).

    - ``name``: the fix's name, written as a string literal in its own package only;
    - ``description``: what ``fixes`` prints;
    - ``steps``: the ``Enum`` of its steps (a plan holds only these);
    - ``planner``: ``(fix, shape) -> Plan``, standard library only (``check`` runs it);
    - ``transformer``: ``"package.module.Class"``, its LibCST transformer, imported only when there is work;
    - ``anchors``: where it acts, as keys of ``Shape.lines``, the first that exists (``check --format github``);
    - ``requires``: the names of the fixes it cannot work without (``--select`` pulls them in);
    - ``imports``: the modules its injected code uses (imported where the file lacks them);
    - ``verify``: what ``verify`` expects of a handler it patched (``registry.verify_expectations``).
    """

    name: str
    description: str
    steps: type[Enum]
    planner: Callable[[Fix, Shape], Plan]
    transformer: str
    anchors: tuple[str, ...]
    requires: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()
    verify: Mapping[str, Any] = field(default_factory=dict)

    def plan(self, shape: Shape) -> Plan:
        return self.planner(self, shape)

    def mark(self, note: str = "") -> str:
        """The comment that tells our injected code apart from upstream's (``features.read_marks`` reads it)."""
        return f"# {MARK_PREFIX} {self.name}" + (f" ({note})" if note else "")

    def owns(self, shape: Shape, key: str) -> bool:
        """Whether definition ``key`` (a name, or ``features.method_key``) carries this fix's mark right above."""
        return self.name in shape.marks_on(key)

    def transformer_class(self) -> Any:
        """The LibCST transformer class (imports libcst)."""
        module, _, name = self.transformer.rpartition(".")
        return getattr(importlib.import_module(module), name)
