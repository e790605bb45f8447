"""One verification, as one pass: find the hook -> launch the driver -> figures -> verdict (rendered by ``render``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

from codemods.reading.shape import UnsupportedShape, inspect

from ..install.model import Target
from .driver.contract import DEFAULT_EVENTS
from .figures import Figures
from .hooks import hook_run
from .launcher import Progress, VerifyError, isolation_for, run_driver
from .verdict import ERROR, Expectation, judge

# What the JSON report copies from the driver's figures, as they are.
FIGURE_KEYS = ("python", "python_version", "packages", "transport", "events", "hang_limit", "claude_code")


@dataclass
class Verification:
    """The verdict on one handler, with the figures it rests on."""

    path: str
    status: str
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    layout: str = ""
    message: str = ""  # why it could not be verified (status error)
    figures: Figures | None = None  # with the deliveries each run should have had
    flags: list[str] = field(default_factory=list)
    hook: dict = field(default_factory=dict)  # how the hook was run, and which file said so
    isolation: str = ""

    def as_json(self) -> dict:
        figures = self.figures
        return {
            "path": self.path,
            "status": self.status,
            "reasons": self.reasons,
            "notes": self.notes,
            "flags": self.flags,
            "layout": self.layout,
            "message": self.message,
            "hook": self.hook,
            "isolation": self.isolation,
            **{key: None if figures is None else getattr(figures, key) for key in FIGURE_KEYS},
            "per_process": {} if figures is None else {key: asdict(run) for key, run in figures.per_process.items()},
            "long_lived": {} if figures is None else figures.long_lived and asdict(figures.long_lived),
        }


def verify_target(
    target: Target,
    events: int = DEFAULT_EVENTS,
    progress: Progress | None = None,
    announce: Callable[[str], None] | None = None,
) -> Verification:
    """Run ``target``'s hook as its wrapper does (both runs) and judge it; errors become status ``error``.

    ``announce`` hears, before any hook runs, what was found and what will run.
    """
    if target.error or target.handler is None or target.python is None:
        return Verification(target.label, ERROR, message=target.error or "not located")
    path = target.handler
    try:
        shape = inspect(path.read_bytes())
    except OSError as error:
        return Verification(str(path), ERROR, message=f"cannot read it: {error.strerror or error}")
    except (SyntaxError, ValueError) as error:
        return Verification(str(path), ERROR, message=f"not valid Python: {error}")
    except UnsupportedShape as error:
        return Verification(str(path), ERROR, message=f"not a claude-mpm hook handler this tool knows: {error}")
    try:
        run = hook_run(target)
        flags, isolation = isolation_for(run)
        if announce is not None:
            announce(
                f"{path}: layout {shape.layout}; runs {run.how} in {target.python}; {events} events a run, {isolation}"
            )
        document = run_driver(target, events, progress, run, flags)
    except (VerifyError, LookupError) as error:
        return Verification(str(path), ERROR, layout=shape.layout, message=str(error))
    figures = Figures.from_json(document)
    verdict = judge(figures, Expectation(run.sources, run.has_dashboard))
    hook = {**run.description(), "origin": target.origin}
    return Verification(
        str(path),
        verdict.status,
        verdict.reasons,
        [*run.notes, *verdict.notes],
        shape.layout,
        figures=figures,
        flags=verdict.flags,
        hook=hook,
        isolation=isolation,
    )
