"""The leak, in pictures: N hook calls through the real 3.8.1 handler, unpatched and patched.

    python -m bench.leak --events 20000 --every 500 --out bench/out

Three variants, each in its own process against a real Socket.IO server on 127.0.0.1, with
the state a long session grows (see ``bench.soak_harness.Growth``) and the default limits: the
unpatched handler, the handler patched without limits and cleanup (``NO_CLEANUP``), and
the fully patched one. Writes ``leak.csv`` (one row per sample and variant) and
``leak.png`` (connections opened, events the server received, tracked collection sizes,
process RSS) into ``--out`` and prints the final figures.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench import corpus, table
from bench.soak_harness import COLLECTIONS, RunResult, Sample, soak
from codemods.engine import fix_source
from codemods.fixes import periodic_cleanup
from codemods.fixes.registry import FIX_NAMES, resolve_selection

# The middle variant: a long-lived handler (singleton) whose dicts nothing trims. It shows
# what the limits and the periodic cleanup are for, which the unpatched handler cannot:
# it builds a fresh handler per call, so its state dies with the call.
NO_CLEANUP = tuple(name for name in FIX_NAMES if name not in resolve_selection([periodic_cleanup.FIX.name])[0])
COLOURS = {"unpatched": "tab:red", "no-cleanup": "tab:orange", "patched": "tab:blue"}
# The unpatched handler connects anew on every call (about 7 ms each on a 2-core machine):
# its run stops here, and the output says so, however many calls the patched one gets.
UNPATCHED_CAP = 20_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.leak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="hook calls per variant (default 20000)")
    parser.add_argument("--every", type=int, default=500, help="sample every this many calls (default 500)")
    parser.add_argument("--out", type=Path, default=Path("bench/out"), help="folder for leak.csv and leak.png")
    parser.add_argument("--version", default="3.8.1", help="claude-mpm release whose handler is driven")
    parser.add_argument(
        "--unpatched-cap",
        type=int,
        default=UNPATCHED_CAP,
        help=f"most calls for the unpatched handler (default {UNPATCHED_CAP})",
    )
    args = parser.parse_args(argv)
    if min(args.events, args.every, args.unpatched_cap) < 1:
        parser.error("--events, --every and --unpatched-cap must be positive")

    original = corpus.handler(args.version)
    variants = [
        ("unpatched", original, min(args.events, args.unpatched_cap)),
        ("no-cleanup", fix_source(original, select=NO_CLEANUP).source, args.events),
        ("patched", fix_source(original).source, args.events),
    ]
    print(f"claude-mpm {args.version}: {args.events} hook calls per variant", file=sys.stderr)
    if args.events > args.unpatched_cap:
        print(f"unpatched run capped at {args.unpatched_cap} calls (it reconnects on every call)", file=sys.stderr)
    runs = [run_alone(name, source, calls, args.every) for name, source, calls in variants]

    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "leak.csv", runs)
    plot(args.out / "leak.png", runs, args.version)
    print(summary(runs))
    print(f"wrote {args.out / 'leak.csv'} and {args.out / 'leak.png'}")
    return 0


def run_alone(name: str, source: bytes, calls: int, every: int) -> RunResult:
    """One variant in a fresh process, so that its RSS is its own (not the other run's, nor libcst's)."""
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        run = pool.submit(soak, source, calls, label=name, sample_every=every, progress=Progress(name, calls)).result()
    print(f"{name}: {calls} calls in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return run


class Progress:
    """About ten progress lines per run, on stderr: the unpatched run takes minutes."""

    def __init__(self, name: str, calls: int) -> None:
        self.name, self.calls = name, calls
        self.step = self.next_report = max(calls // 10, 1)

    def __call__(self, sample: Sample) -> None:
        if sample.events >= self.next_report or sample.events == self.calls:
            self.next_report = sample.events + self.step
            print(
                f"  {self.name}: {sample.events}/{self.calls} calls, {sample.connections_opened} connections "
                f"opened, RSS {sample.rss_mb:.1f} MB",
                file=sys.stderr,
                flush=True,
            )


def write_csv(path: Path, runs: list[RunResult]) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["events", "variant", "connections_opened", "connections_open", "events_delivered", *COLLECTIONS, "rss_mb"]
        )
        for run in runs:
            for sample in run.samples:
                writer.writerow(
                    [
                        sample.events,
                        run.label,
                        sample.connections_opened,
                        sample.connections_open,
                        sample.events_delivered,
                        *(sample.sizes.get(name, "") for name in COLLECTIONS),
                        f"{sample.rss_mb:.1f}",
                    ]
                )


def summary(runs: list[RunResult]) -> str:
    headers = [
        "variant",
        "calls",
        "seconds",
        "conn. opened",
        "peak open",
        "delivered",
        "errors",
        *(f"peak {name.lstrip('_')}" for name in COLLECTIONS),
        "RSS MB",
    ]
    rows = [
        [
            run.label,
            run.events,
            f"{run.seconds:.1f}",
            run.connections_opened,
            run.peak_concurrent,
            run.delivered_total,
            run.errors,
            *(run.peak_sizes.get(name, "-") for name in COLLECTIONS),
            f"{run.samples[0].rss_mb:.0f} -> {run.samples[-1].rss_mb:.0f}",
        ]
        for run in runs
    ]
    return table(headers, rows)


def plot(path: Path, runs: list[RunResult], version: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(13, 9), sharex=True)
    panels = [
        (axes[0][0], "Socket.IO connections opened", lambda s: s.connections_opened),
        (axes[0][1], "claude_event events the server received", lambda s: s.events_delivered),
        (axes[1][1], "process RSS (MB)", lambda s: s.rss_mb),
    ]
    for ax, title, value in panels:
        for run in runs:
            ax.plot(
                [s.events for s in run.samples],
                [value(s) for s in run.samples],
                label=f"{run.label} (last: {value(run.samples[-1]):,.0f})",
                color=COLOURS.get(run.label),
            )
        ax.set_title(title)
        ax.legend()
    for ax in axes[0]:
        ax.set_ylim(bottom=0)
    sizes = axes[1][0]
    for run in runs:
        for name, line in zip(COLLECTIONS, ("-", "--", ":", "-.")):
            points = [(s.events, s.sizes[name]) for s in run.samples if name in s.sizes]
            if points:
                # matplotlib leaves labels starting with "_" out of the legend
                sizes.plot(*zip(*points), line, label=f"{name.lstrip('_')} ({run.label})", color=COLOURS.get(run.label))
    sizes.set_yscale("symlog", linthresh=1)  # bounded hundreds next to unbounded tens of thousands
    sizes.set_title("tracked collection sizes (most entries between two samples)")
    sizes.legend(fontsize="x-small", ncol=2, loc="center right", bbox_to_anchor=(1, 0.33))
    for ax in axes[1]:
        ax.set_xlabel("hook calls in one process")
    figure.suptitle(
        f"claude-mpm {version} hook handler: unpatched, patched without cleanup "
        f"(--select {','.join(NO_CLEANUP)}), patched"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
