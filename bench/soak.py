"""The soak test's run as a benchmark: every Socket.IO layout, unpatched against patched.

    python -m bench.soak [--events 400] [--layouts 3.2.1,3.8.1]

Same calls, same growth and same small limits (``bench.soak_harness.SOAK_SETTINGS``) as
``tests/test_soak.py``; prints connections opened, events delivered and peak sizes.
"""

from __future__ import annotations

import argparse
import sys

from bench import corpus, table
from bench.soak_harness import COLLECTIONS, SOAK_CALLS, SOAK_SETTINGS, soak
from codemods.engine import fix_source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=SOAK_CALLS, help=f"hook calls per run (default {SOAK_CALLS})")
    parser.add_argument(
        "--layouts",
        default=",".join(corpus.SOCKETIO_LAYOUTS),
        help="comma-separated releases, one per layout (default: all Socket.IO layouts)",
    )
    args = parser.parse_args(argv)
    if args.events < 1:
        parser.error("--events must be positive")

    rows = []
    for version in args.layouts.split(","):
        original = corpus.handler(version)
        variants = (("unpatched", original), ("patched", fix_source(original, settings=SOAK_SETTINGS).source))
        for variant, source in variants:
            run = soak(source, args.events, label=variant, max_cache_age=SOAK_SETTINGS.max_cache_age_seconds)
            rows.append(
                [
                    version,
                    variant,
                    run.connections_opened,
                    run.peak_concurrent,
                    run.delivered_total,
                    run.errors,
                    *(run.peak_sizes.get(name, "-") for name in COLLECTIONS),
                    run.peak_stale,
                    f"{run.seconds:.2f}",
                ]
            )
            print(f"{version} {variant}: done", file=sys.stderr, flush=True)
    headers = [
        "layout",
        "variant",
        "conn. opened",
        "peak open",
        "delivered",
        "errors",
        *(f"peak {name.lstrip('_')}" for name in COLLECTIONS),
        "peak stale",
        "seconds",
    ]
    print(
        f"{args.events} hook calls per run; limits: delegations {SOAK_SETTINGS.max_delegation_tracking}, "
        f"prompts {SOAK_SETTINGS.max_prompt_tracking}, cache age {SOAK_SETTINGS.max_cache_age_seconds} s, "
        f"cleanup every {SOAK_SETTINGS.cleanup_interval_events} calls"
    )
    print(table(headers, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
