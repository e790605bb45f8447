"""The verdict on one handler: a pure function of the typed figures and what its install expects.

Pass means: no hook hung or failed, every reply is one the release's Claude Code contract
accepts, the dashboard got every event it expects (over whichever channel the release uses),
no connection was left open, at most ``max_connections`` were open at once in the long-lived
run, and every tracked collection stayed within its limit plus one cleanup interval. The time
a hook takes against a server that never answers is reported, and flagged above 2 s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from codemods.settings import Settings
from codemods.status import VerifyStatus

from .driver.contract import SETTLE_SECONDS, Condition
from .figures import Figures, LongLived, PerProcess

PASS, FAIL, ERROR = VerifyStatus.PASS, VerifyStatus.FAIL, VerifyStatus.ERROR
# The event each kind of hook event makes the dashboard receive, in every release that sends any
# (3.x's Socket.IO claude_event {"type": "hook.pre_tool"}; 4.1's HTTP post {"type": "hook", "subtype": "pre_tool"}).
EMITS = {
    "UserPromptSubmit": "hook.user_prompt",
    "PreToolUse": "hook.pre_tool",
    "PostToolUse": "hook.post_tool",
    "SubagentStop": "hook.subagent_stop",
    "Stop": "hook.stop",
}
# 3.5 and later also announce each Task delegation (the events' PreToolUse is a Task).
SUBAGENT_START = "hook.subagent_start"
SUBAGENT_START_MARK = re.compile(rb"""["']subagent_start["']""")
# 5.x's Python hook also reports each hook's own run, one hook_execution event per hook event.
HOOK_EXECUTION = "hook.hook_execution"
HOOK_EXECUTION_MARK = re.compile(rb"""["']hook_execution["']""")
SLOW_SECONDS = 2.0  # a hook slower than this against a hung dashboard is flagged
CONDITION_WORDS = {
    Condition.SERVER_UP: "with the server up",
    Condition.NO_SERVER: "with no server listening",
    Condition.WEDGED: "against a server that never answers",
}


@dataclass(frozen=True)
class Expectation:
    """What the install's dashboard expects from the hook, read from the code that runs."""

    sources: bytes  # the code the hook runs: which events it announces
    expects_events: bool  # the install ships a dashboard (and the hook is meant to feed it)
    max_connections: int = Settings().max_connections


@dataclass
class Verdict:
    status: str
    reasons: list[str] = field(default_factory=list)  # why it fails, one line each
    notes: list[str] = field(default_factory=list)  # what was not judged, and why
    flags: list[str] = field(default_factory=list)  # reported, not failed: slow against a hung dashboard


def expected_deliveries(source: bytes, sent: dict[str, int]) -> dict[str, int]:
    """The event types (and counts) the dashboard should receive for the hook events ``sent``."""
    expected: dict[str, int] = {}
    for kind, count in sent.items():
        if kind in EMITS:
            expected[EMITS[kind]] = expected.get(EMITS[kind], 0) + count
    if SUBAGENT_START_MARK.search(source) and sent.get("PreToolUse"):
        expected[SUBAGENT_START] = sent["PreToolUse"]
    if HOOK_EXECUTION_MARK.search(source):
        expected[HOOK_EXECUTION] = sum(count for kind, count in sent.items() if kind in EMITS)
    return expected


def add_expected(figures: Figures, expectation: Expectation) -> Figures:
    """Give each counted run the deliveries the dashboard should have had (shown in reports and JSON)."""
    runs: list[PerProcess | LongLived] = list(figures.per_process.values())
    if figures.long_lived is not None:
        runs.append(figures.long_lived)
    for run in runs:
        counted = run.delivered is not None and expectation.expects_events
        run.expected = expected_deliveries(expectation.sources, run.sent) if counted else None
    return figures


def judge(figures: Figures, expectation: Expectation) -> Verdict:
    """The verdict on ``figures``, which get the deliveries they should have had (:func:`add_expected`)."""
    add_expected(figures, expectation)
    reasons: list[str] = []
    notes: list[str] = []
    for condition, run in figures.per_process.items():
        if condition is not Condition.WEDGED:
            reasons += _per_process_reasons(run, expectation)
    if figures.long_lived is None:
        notes.append("long-lived: not run (a shell hook: Claude Code starts it once per event)")
    else:
        reasons += _long_lived_reasons(figures.long_lived, expectation)
        unlimited = [
            name
            for name, sizes in figures.long_lived.collections.items()
            if sizes["limit"] is None and sizes["limit_name"]
        ]
        if unlimited:
            notes.append(
                f"long-lived: no size limit on {', '.join(unlimited)} in this handler: peak sizes reported, not judged"
            )
    if not expectation.expects_events:
        notes.insert(0, "no dashboard in this install and no Socket.IO client in this handler: events not applicable")
    flags = _wedged_flags(figures.wedged)
    return Verdict(FAIL if reasons else PASS, reasons, notes, flags)


def _per_process_reasons(run: PerProcess, expectation: Expectation) -> list[str]:
    reasons = []
    hooks = _count(run.hooks, "hook process")
    words = CONDITION_WORDS.get(run.condition, run.condition)
    if run.hung and run.not_run:
        reasons.append(
            f"per process: hook {run.hooks} of {run.hooks + run.not_run} hung {words} (killed after "
            f"{run.hang_limit:g} s; the {run.not_run} after it not run)"
        )
    elif run.hung:
        reasons.append(f"per process: {run.hung} of {hooks} hung {words} (killed after {run.hang_limit:g} s)")
    if run.exit_errors:
        error = _first_error(run.failures)
        reasons.append(
            f"per process: {run.exit_errors} of {hooks} failed {words}{error}; "
            "the wrapper answers continue for them, so the hook does nothing"
        )
    silent = run.replies_not_continue - run.exit_errors
    if silent > 0:
        reasons.append(
            f"per process: {silent} of {hooks} did not reply continue {words} "
            "(as this release's Claude Code contract asks)"
        )
    if run.expected is not None and run.delivered is not None:
        lost = _delivery_reasons("per process", run.delivered, run.expected)
        if lost and run.errors_reported and not run.exit_errors:
            lost[0] += f"; the hooks wrote: {run.errors_reported[0]}"
        reasons += lost
        if run.connections_left_open:
            opened = _count(run.connections_opened or 0, "connection")
            reasons.append(
                f"per process: {run.connections_left_open} of {opened} left open at the server "
                f"{SETTLE_SECONDS:g} s after the last hook"
            )
    return reasons


def _long_lived_reasons(run: LongLived, expectation: Expectation) -> list[str]:
    reasons = []
    calls = run.calls
    import_failure = next((failure for failure in run.failures if failure.startswith("import: ")), None)
    if import_failure is not None:
        return [f"long-lived: the handler does not import as its wrapper runs it ({import_failure[8:]})"]
    if run.hung_call is not None:
        reasons.append(f"long-lived: call {run.hung_call} of {calls} hung (killed after {run.hang_limit:g} s)")
    elif run.calls_done < calls:
        reasons.append(
            f"long-lived: the process ended after {run.calls_done} of {_count(calls, 'call')} "
            f"(exit code {run.exit_code})"
        )
    elif not run.exited:
        reasons.append(f"long-lived: the process did not exit within {run.hang_limit:g} s of its last call (killed)")
    if run.replies_not_continue:
        reasons.append(
            f"long-lived: {run.replies_not_continue} of {_count(run.calls_done, 'call')} did not reply continue"
        )
    if run.expected is not None:
        reasons += _delivery_reasons("long-lived", run.delivered, run.expected)
        if run.connections_left_open:
            reasons.append(
                f"long-lived: {_count(run.connections_left_open, 'connection')} left open at the "
                "server after the process ended"
            )
        limit = run.max_connections or expectation.max_connections  # the handler's own pool size, when it has one
        if run.peak_open > limit:
            reasons.append(f"long-lived: {_count(run.peak_open, 'connection')} open at once (at most {limit})")
    interval = run.cleanup_interval or 0
    for name, sizes in run.collections.items():
        if sizes["limit"] is not None and sizes["peak"] > sizes["limit"] + interval:
            reasons.append(
                f"long-lived: {name} grew to {sizes['peak']} entries (limit {sizes['limit']} "
                f"+ one cleanup interval of {interval})"
            )
    return reasons


def _wedged_flags(run: PerProcess | None) -> list[str]:
    """Against a dashboard that accepts and never answers: how long each hook held Claude Code."""
    if run is None or run.hook_seconds_max is None or run.hook_seconds_max <= SLOW_SECONDS:
        return []
    hung = f", {run.hung} killed at {run.hang_limit:g} s" if run.hung else ""
    return [
        f"against a server that never answers, a hook takes up to {run.hook_seconds_max:.1f} s "
        f"(median {run.hook_seconds_median or 0:.1f} s of {_count(run.hooks, 'hook')}{hung}): "
        f"Claude Code waits that long on every event while the dashboard hangs"
    ]


def _first_error(failures: list[str]) -> str:
    """`` (ImportError: ...)`` from the first failure example, when one names it."""
    for failure in failures:
        _, separator, detail = failure.partition(": exit ")
        if separator:
            detail = detail.split(": ", 1)[-1]
            return f" ({detail})" if detail else ""
    return ""


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "es" if noun.endswith("s") else "s")


def _delivery_reasons(run_name: str, delivered: dict[str, int], expected: dict[str, int]) -> list[str]:
    lost = {kind: count - delivered.get(kind, 0) for kind, count in expected.items() if delivered.get(kind, 0) < count}
    if not lost:
        return []
    total = sum(expected.values())
    got = total - sum(lost.values())
    if got == 0 and not delivered:
        return [f"{run_name}: nothing delivered: 0 of {total} events reached the dashboard"]
    listed = ", ".join(f"{count} {kind}" for kind, count in lost.items())
    return [f"{run_name}: events lost: {got} of {total} delivered (lost {listed})"]
