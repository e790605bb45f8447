"""Many files at once: spread over processes, results kept in the order the files were given."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Callable, TypeVar

T = TypeVar("T")


def run_all(
    function: Callable[..., T],
    paths: Sequence,
    jobs: int,
    progress: bool = False,
    preload_libcst: bool = False,
    no_color: bool = False,
) -> list[T]:
    """``[function(path) for path in paths]``, over ``jobs`` processes when there are several files.

    ``progress`` draws a bar on stderr (the caller decides that stderr is a terminal)."""
    jobs = min(jobs, len(paths))
    if jobs <= 1:
        return _collect(map(function, paths), len(paths), progress, no_color)
    from concurrent.futures import ProcessPoolExecutor

    initializer = _import_libcst if preload_libcst else None
    with ProcessPoolExecutor(max_workers=jobs, initializer=initializer) as pool:
        return _collect(pool.map(function, paths), len(paths), progress, no_color)


def _import_libcst() -> None:
    """Each worker imports libcst once, while the first files are being handed out."""
    import libcst  # noqa: F401


def _collect(results: Iterable[T], total: int, progress: bool, no_color: bool) -> list[T]:
    if not progress:
        return list(results)
    from rich.progress import Progress

    from .report import console_for

    collected = []
    # On stderr with the reports: stdout may be a file or pipe that must hold only diffs or JSON.
    with Progress(console=console_for(sys.stderr, no_color), transient=True) as bar:
        task = bar.add_task("hook handlers", total=total)
        for result in results:
            collected.append(result)
            bar.advance(task)
    return collected
