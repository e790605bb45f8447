"""Whole-process timings of the tool against the floor, median of several interleaved runs.

    python -m bench.speed [--runs 7]

The floor is what no LibCST-based tool can beat: a Python process that imports libcst,
parses the claude-mpm 3.8.1 handler, generates its code and compiles it. Every figure is
a fresh process (as a user or CI step runs it), timed from the outside.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import corpus

TOOL = [sys.executable, "-m", "fixer"]
FLOOR = (
    "import sys, libcst; source = open(sys.argv[1], 'rb').read(); "
    "compile(libcst.parse_module(source).bytes, sys.argv[1], 'exec')"
)
# The claude-mpm layouts with work to do, one release each (the eight pre-fix layouts of the README's release table).
LAYOUTS = ("3.0.0", "3.1.3", "3.2.1", "3.3.2", "3.4.0", "3.5.0", "3.6.0", "3.8.1")
FOLDER_SIZE = 40


def timed(command, prepare=None) -> float:
    if prepare:
        prepare()
    start = time.perf_counter()
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def handler_tree(root: Path, count: int) -> list:
    """``count`` distinct handlers (each layout several times, each copy told apart by a comment)."""
    if root.exists():
        shutil.rmtree(root)
    paths = []
    for index in range(count):
        version = LAYOUTS[index % len(LAYOUTS)]
        target = root / f"{index:02d}-{version}" / "claude_mpm" / "hooks" / "claude_hooks" / "hook_handler.py"
        target.parent.mkdir(parents=True)
        target.write_bytes(corpus.handler(version) + f"# copy {index}\n".encode())
        paths.append(target)
    return paths


def imports_of_help() -> set:
    probe = (
        "import sys, runpy; sys.argv = ['fix-memory-leaks', '--help']\n"
        "try:\n    runpy.run_module('fixer', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print(' '.join(m for m in ('libcst', 'yaml', 'rich') if m in sys.modules), file=sys.stderr)"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    return set(run.stderr.split())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="fml-speed-"))
    pristine = corpus.handler("3.8.1")
    single = work / "single" / "hook_handler.py"
    patched = work / "patched" / "hook_handler.py"
    for path in (single, patched):
        path.parent.mkdir(parents=True)
        path.write_bytes(pristine)
    subprocess.run([*TOOL, "apply", str(patched)], check=True, capture_output=True)

    def reset_single():
        single.write_bytes(pristine)
        for backup in single.parent.glob("*.backup*"):
            backup.unlink()

    folder = work / "folder"
    cases = {
        "floor (import libcst, parse, codegen, compile)": (["-c", FLOOR, str(single)], reset_single),
        "apply --dry-run": (["apply", "--dry-run", str(single)], reset_single),
        "apply": (["apply", str(single)], reset_single),
        "check (already patched)": (["check", str(patched)], None),
        "--help": (["--help"], None),
    }
    samples = {name: [] for name in cases}
    for _ in range(args.runs):  # interleaved, so drift in machine load hits every case alike
        for name, (arguments, prepare) in cases.items():
            command = [sys.executable, *arguments] if name.startswith("floor") else TOOL + arguments
            samples[name].append(timed(command, prepare))
    medians = {name: statistics.median(times) for name, times in samples.items()}
    floor = medians["floor (import libcst, parse, codegen, compile)"]

    folder_runs, singles_runs = [], []
    for _ in range(max(3, args.runs // 2)):
        paths = handler_tree(folder, FOLDER_SIZE)
        folder_runs.append(timed([*TOOL, "apply", str(folder)]))
        paths = handler_tree(folder, FOLDER_SIZE)
        singles_runs.append(sum(timed([*TOOL, "apply", str(path)]) for path in paths))
    folder_time, singles_time = statistics.median(folder_runs), statistics.median(singles_runs)

    targets = {"apply --dry-run": 1.35, "apply": 1.45, "check (already patched)": 0.5}
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; median of {args.runs} runs\n"
    )
    print(f"{'case':50s} {'seconds':>8s} {'x floor':>8s} {'target':>8s}")
    for name, seconds in medians.items():
        target = targets.get(name)
        verdict = "" if target is None else ("  ok" if seconds / floor <= target else "  MISSED")
        shown = f"<= {target}" if target else ""
        print(f"{name:50s} {seconds:8.3f} {seconds / floor:8.2f} {shown:>8s}{verdict}")
    ratio = folder_time / singles_time
    print(f"{'folder of 40 distinct handlers (apply)':50s} {folder_time:8.3f}")
    print(f"{'40 single apply runs, summed':50s} {singles_time:8.3f}")
    print(f"{'folder / singles':50s} {ratio:8.2f} {'x':>8s} {'<= 0.3':>8s}{'  ok' if ratio <= 0.3 else '  MISSED'}")
    loaded = imports_of_help()
    heavy = sorted(loaded & {"libcst", "yaml"})
    print(f"--help imports libcst or yaml: {'yes: ' + ', '.join(heavy) if heavy else 'no'}")
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
