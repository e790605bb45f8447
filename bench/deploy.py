"""The hook where claude-mpm really runs it: one ``python hook_handler.py`` process per event.

For claude-mpm 3.8.1 unpatched, upstream's own fix (3.9.4 and 3.9.11, as shipped), and each of
them patched (3.8.1) or repaired (3.9.4, 3.9.11) by this tool,
over both transports (claude-mpm's own dependencies give HTTP long-polling; websocket-client
on PYTHONPATH makes the client upgrade to websocket), it runs hook processes one after
another, as ``hook_wrapper.sh`` does, with the dashboard-like server up, with nothing
listening, and with a server that accepts connections but never answers. The conditions
take turns in rounds, so that a busy machine weighs on all of them alike.

    python -m bench.deploy [--events 12] [--rounds 3]

Needs the cached real installs (``bench.corpus.installed``: a venv with
``pip install claude-mpm==V``, made once) and the ``bench`` extra. Prints a table; the
target is the patched hook's median with the server up at most 1.35x its median with no
server listening.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import corpus, table
from codemods.engine import fix_source
from fixer.verify import expected_deliveries
from fixer.verify.driver import Condition, PerProcessRun, run_per_process

# (label, release, patched by this tool)
VARIANTS = (
    ("unpatched 3.8.1", "3.8.1", False),
    ("upstream 3.9.4", "3.9.4", False),
    ("upstream 3.9.11", "3.9.11", False),
    ("ours 3.8.1", "3.8.1", True),
    ("ours 3.9.4", "3.9.4", True),
    ("ours 3.9.11", "3.9.11", True),
)
CONDITIONS = tuple(Condition)
TARGET_RATIO = 1.35


@dataclass
class Figures:
    """What the runs of one variant over one transport added up to."""

    label: str
    transport: str
    seconds: dict[str, list[float]] = field(default_factory=lambda: {condition: [] for condition in CONDITIONS})
    sent: int = 0  # hook processes with the server up
    expected: int = 0  # events those hooks emit
    delivered: int = 0
    left_open: int = 0
    hung: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CONDITIONS, 0))

    def add(self, run: PerProcessRun, source: bytes) -> None:
        self.seconds[run.condition].extend(run.hook_seconds)
        self.hung[run.condition] += run.hung
        if run.condition is Condition.SERVER_UP:
            self.sent += sum(run.sent.values())
            self.expected += sum(expected_deliveries(source, run.sent).values())
            self.delivered += sum((run.delivered or {}).values())
            self.left_open += run.connections_left_open or 0

    def median(self, condition: str) -> float:
        return statistics.median(self.seconds[condition])

    @property
    def ratio(self) -> float:
        return self.median(Condition.SERVER_UP) / self.median(Condition.NO_SERVER)

    def row(self) -> list:
        return [
            self.label,
            self.transport,
            *(f"{self.median(c):.3f}" for c in CONDITIONS),
            f"{self.ratio:.2f}",
            f"{self.delivered} of {self.expected}",
            self.left_open,
            "/".join(str(self.hung[c]) for c in CONDITIONS),
        ]


@contextlib.contextmanager
def pythonpath(folder: Path | None) -> Iterator[None]:
    """The hook processes inherit our environment: put ``folder`` (or nothing) on their PYTHONPATH."""
    saved = os.environ.pop("PYTHONPATH", None)
    if folder is not None:
        os.environ["PYTHONPATH"] = str(folder)
    try:
        yield
    finally:
        os.environ.pop("PYTHONPATH", None)
        if saved is not None:
            os.environ["PYTHONPATH"] = saved


def measure(label: str, version: str, patched: bool, events: int, rounds: int, websocket: Path) -> list[Figures]:
    results = []
    with corpus.pristine_install(version) as (python, handler):
        if patched:
            handler.write_bytes(fix_source(handler.read_bytes()).source)
        for transport, folder in (("polling", None), ("websocket", websocket)):
            figures = Figures(label, transport)
            with pythonpath(folder):
                for round_number in range(rounds):
                    for condition in CONDITIONS:
                        print(
                            f"deploy: {label}, {transport}, {condition}, round {round_number + 1}/{rounds}",
                            file=sys.stderr,
                        )
                        figures.add(run_per_process(str(python), handler, events, condition), handler.read_bytes())
            results.append(figures)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=12, help="hook processes per condition and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the three server conditions")
    args = parser.parse_args(argv)
    websocket = corpus.websocket_client()
    results = [figures for variant in VARIANTS for figures in measure(*variant, args.events, args.rounds, websocket)]
    headers = [
        "handler",
        "transport",
        "median s, server up",
        "no server",
        "never answers",
        "up/none",
        "events delivered",
        "left open",
        "hung (up/none/never)",
    ]
    print(table(headers, [figures.row() for figures in results]))
    ours = [figures for figures in results if figures.label.startswith("ours")]
    verdicts = [f"{f.label.removeprefix('ours ')} {f.transport} {f.ratio:.2f}x" for f in ours]
    met = all(figures.ratio <= TARGET_RATIO for figures in ours)
    target = f"target <= {TARGET_RATIO}x: {'met' if met else 'MISSED'}"
    print(f"\nours, server up / no server: {', '.join(verdicts)} ({target})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
