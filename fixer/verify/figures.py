"""The driver's figures as typed runs: rebuilt from its JSON, so that the verdict reads fields, not keys.

The driver (``driver/``) runs in the install's interpreter and can import nothing of ours,
so its results cross the process boundary as JSON; here they become dataclasses again. The
JSON itself is what ``verify --format json`` prints (keys documented in the README).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from .driver.contract import Condition


@dataclass
class PerProcess:
    """One hook process per event under one server condition (``driver.PerProcessRun``)."""

    condition: Condition
    hang_limit: float
    sent: dict[str, int]
    hook_seconds: list[float]
    hung: int
    replies_not_continue: int
    failures: list[str]
    delivered: dict[str, int] | None = None
    connections_opened: int | None = None
    connections_left_open: int | None = None
    exit_errors: int = 0
    channels: dict[str, int] | None = None
    errors_reported: list[str] = field(default_factory=list)
    not_run: int = 0
    hook_seconds_median: float | None = None
    hook_seconds_max: float | None = None
    expected: dict[str, int] | None = None  # filled in by the verdict: what the dashboard should have got

    @property
    def hooks(self) -> int:
        return len(self.hook_seconds)


@dataclass
class LongLived:
    """One process calling ``main()`` N times (``driver.LongLivedRun``)."""

    calls: int
    hang_limit: float
    calls_done: int
    hung_call: int | None
    exited: bool
    exit_code: int | None
    exit_seconds: float | None
    replies_not_continue: int
    failures: list[str]
    sent: dict[str, int]
    delivered: dict[str, int]
    connections_opened: int
    peak_open: int
    connections_left_open: int
    collections: dict[str, dict[str, Any]] = field(default_factory=dict)
    cleanup_interval: int | None = None
    max_connections: int | None = None
    channels: dict[str, int] = field(default_factory=dict)
    expected: dict[str, int] | None = None

    @property
    def hung(self) -> bool:
        return self.hung_call is not None or (self.calls_done == self.calls and not self.exited)


@dataclass
class Figures:
    """Everything one driver run measured on one handler."""

    python: str
    python_version: str
    packages: dict[str, str | None]
    transport: str
    events: int
    hang_limit: float
    per_process: dict[Condition, PerProcess]
    long_lived: LongLived | None
    claude_code: str | None = None

    @classmethod
    def from_json(cls, document: dict) -> Figures:
        per_process = {
            Condition(condition): _build(PerProcess, {**run, "condition": Condition(run["condition"])})
            for condition, run in document["per_process"].items()
        }
        long_lived = document.get("long_lived")
        return cls(
            python=document["python"],
            python_version=document["python_version"],
            packages=document["packages"],
            transport=document["transport"],
            claude_code=document.get("claude_code"),
            events=document["events"],
            hang_limit=document["hang_limit"],
            per_process=per_process,
            long_lived=None if long_lived is None else _build(LongLived, long_lived),
        )

    @property
    def server_up(self) -> PerProcess | None:
        return self.per_process.get(Condition.SERVER_UP)

    @property
    def no_server(self) -> PerProcess | None:
        return self.per_process.get(Condition.NO_SERVER)

    @property
    def wedged(self) -> PerProcess | None:
        return self.per_process.get(Condition.WEDGED)


def _build(kind, data: dict):
    """A dataclass from the driver's dict; keys it does not know (a newer driver's) are dropped."""
    known = {item.name for item in fields(kind)}
    return kind(**{key: value for key, value in data.items() if key in known})
