"""The handler layouts this tool knows, one row each: a new release with a known layout is one new row.

A row is found by the features of the file (``Shape``), never by a version string; the first row that
matches is the layout. ``name`` is what check/apply/verify print, ``seen_in`` where it was seen on the index
(``A``, ``A-B`` or ``A+``: a release, a range, a release and all later ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable

from .features import Shape, UpstreamVariant


class Treatment(Enum):
    """What the fixes do to a layout."""

    PATCH = "our fixes add what the file lacks"
    REPAIR = "claude-mpm's own fix is replaced in place where it breaks the hook, the rest kept"
    LEAVE = "claude-mpm's own code: left byte-identical, every fix not applicable"


class VerifyRun(Enum):
    """What ``verify`` expects of a layout's patched hook."""

    NO_CLIENT = "hook replies; no Socket.IO client to check"
    POOLED = "hook replies; events delivered through one pooled connection, none left open"
    UPSTREAM = "run as claude-mpm's own wrapper runs it; known breakage named"


@dataclass(frozen=True)
class Layout:
    name: str
    seen_in: tuple[str, ...]  # releases on the package index
    matches: Callable[[Shape], bool]
    treatment: Treatment
    verify: VerifyRun


def _upstream(variant: UpstreamVariant) -> Callable[[Shape], bool]:
    return lambda shape: shape.upstream is not None and shape.upstream.variant is variant


LAYOUTS: tuple[Layout, ...] = (
    Layout(
        f"claude-mpm's own fix 3.9.4-3.9.8 ({UpstreamVariant.POOL_AND_SINGLETON.value})",
        ("3.9.4", "3.9.5", "3.9.6", "3.9.7", "3.9.8"),
        _upstream(UpstreamVariant.POOL_AND_SINGLETON),
        Treatment.REPAIR,
        VerifyRun.POOLED,
    ),
    Layout(
        f"claude-mpm's own fix 3.9.9-3.9.11 ({UpstreamVariant.WITH_ALARM_AND_EXIT.value})",
        ("3.9.9", "3.9.10", "3.9.11"),
        _upstream(UpstreamVariant.WITH_ALARM_AND_EXIT),
        Treatment.REPAIR,
        VerifyRun.POOLED,
    ),
    Layout(
        "fixed upstream (4.x+)",
        ("4.0.0+",),
        lambda shape: shape.carries_upstream_rework,
        Treatment.LEAVE,
        VerifyRun.UPSTREAM,
    ),
    Layout(
        "3.0-3.1 (no Socket.IO client, no tracking)",
        ("3.0.0-3.1.2", "3.1.3"),
        lambda shape: not shape.has_socketio_client and not shape.tracked,
        Treatment.PATCH,
        VerifyRun.NO_CLIENT,
    ),
    Layout(
        "3.6-3.9.2 (Socket.IO, delegations, prompts)",
        ("3.6.0-3.7.8", "3.8.1-3.9.2"),
        lambda shape: "pending_prompts" in shape.tracked,
        Treatment.PATCH,
        VerifyRun.POOLED,
    ),
    Layout(
        "3.5 (Socket.IO, delegation requests)",
        ("3.5.0-3.5.6",),
        lambda shape: "delegation_requests" in shape.tracked,
        Treatment.PATCH,
        VerifyRun.POOLED,
    ),
    Layout(
        "3.2-3.4 (Socket.IO, delegations)",
        ("3.2.1-3.3.0", "3.3.2", "3.4.0-3.4.27"),
        lambda shape: True,  # what is left: a Socket.IO client or delegations, neither prompts nor requests
        Treatment.PATCH,
        VerifyRun.POOLED,
    ),
)


def layout_of(shape: Shape) -> Layout:
    """The first row whose predicate holds for ``shape``."""
    return next(layout for layout in LAYOUTS if layout.matches(shape))
