"""The real claude-mpm releases, downloaded from the package index once and cached in ``.cache/``.

``handler(version)`` gives the bytes of ``claude_mpm/hooks/claude_hooks/hook_handler.py`` of
that release's wheel; ``installed(version)`` a virtual environment holding a real
``pip install claude-mpm==version``, for running the handler the way claude-mpm does. Nothing
of claude-mpm is committed to this repository.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("FIX_MEMORY_LEAKS_CACHE", ROOT / ".cache"))
HANDLER_IN_WHEEL = "claude_mpm/hooks/claude_hooks/hook_handler.py"

PRE_FIX = (
    "3.0.0 3.0.1 3.1.0 3.1.1 3.1.2 3.1.3 3.2.1 3.3.0 3.3.2 "
    "3.4.0 3.4.2 3.4.3 3.4.5 3.4.6 3.4.7 3.4.9 3.4.10 3.4.13 3.4.14 3.4.16 3.4.17 3.4.20 3.4.22 3.4.24 3.4.26 3.4.27 "
    "3.5.0 3.5.1 3.5.2 3.5.4 3.5.6 3.6.0 3.6.2 3.7.1 3.7.4 3.7.8 3.8.1 3.9.0 3.9.2"
).split()
FIXED_UPSTREAM = "3.9.4 3.9.5 3.9.6 3.9.7 3.9.8 3.9.9 3.9.11 4.0.3 4.1.0 4.5.0 5.0.1 5.4.50 5.9.10".split()
ALL_RELEASES = PRE_FIX + FIXED_UPSTREAM
# claude-mpm's own fix as released in 3.9.4-3.9.11 (3.9.10 is not on the index) breaks the hook in real use:
# `apply` repairs it. What it refactored from 4.x on is left byte-identical.
UPSTREAM_BROKEN = "3.9.4 3.9.5 3.9.6 3.9.7 3.9.8 3.9.9 3.9.11".split()
LEFT_ALONE = [version for version in FIXED_UPSTREAM if version not in UPSTREAM_BROKEN]
# One release of each layout that has a Socket.IO client (what the soak test drives).
SOCKETIO_LAYOUTS = ("3.2.1", "3.3.2", "3.4.0", "3.5.0", "3.6.0", "3.8.1")


class CorpusUnavailable(Exception):
    """A release could not be downloaded (no network to the package index?)."""


def _wheel(version: str) -> Path:
    wheels = CACHE / "wheels"
    found = sorted(wheels.glob(f"claude_mpm-{version}-*.whl"))
    if found:
        return found[0]
    with locked(wheels.with_name(f"wheels-{version}.lock")):  # test workers share the cache: one download
        return _download_wheel(version, wheels)


def _download_wheel(version: str, wheels: Path) -> Path:
    found = sorted(wheels.glob(f"claude_mpm-{version}-*.whl"))
    if found:  # another worker downloaded it while this one waited for the lock
        return found[0]
    staging = wheels.with_name(f"wheels-{version}.part.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "-q",
        "-d",
        str(staging),
        f"claude-mpm=={version}",
    ]
    try:
        _run_or_unavailable(command, f"pip download claude-mpm=={version}")
        downloaded = sorted(staging.glob(f"claude_mpm-{version}-*.whl"))
        if not downloaded:
            raise CorpusUnavailable(f"pip download claude-mpm=={version} left no wheel in {staging}")
        wheels.mkdir(parents=True, exist_ok=True)
        return downloaded[0].replace(wheels / downloaded[0].name)  # whole, or not there at all
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def handler_path(version: str) -> Path:
    """The cached handler file of a release (downloaded on first use)."""
    target = CACHE / "handlers" / f"{version}.py"
    if not target.exists():
        data = zipfile.ZipFile(_wheel(version)).read(HANDLER_IN_WHEEL)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".part.{os.getpid()}")  # workers may write it at once: each its own
        partial.write_bytes(data)
        partial.replace(target)
    return target


def handler(version: str) -> bytes:
    return handler_path(version).read_bytes()


def fetch_all(versions: Iterable[str] = ALL_RELEASES) -> dict[str, Path]:
    """Download what is missing, eight at a time."""
    versions = list(versions)
    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(zip(versions, pool.map(handler_path, versions)))


def unpacked(version: str) -> Path:
    """The release's wheel unpacked (cached): a folder to put on sys.path so its handler can be imported."""
    target = CACHE / "unpacked" / version
    if (target / "claude_mpm").is_dir():
        return target
    with locked(target.with_name(f"{version}.lock")):
        if not (target / "claude_mpm").is_dir():
            staging = target.with_name(f"{version}.part.{os.getpid()}")
            shutil.rmtree(staging, ignore_errors=True)
            zipfile.ZipFile(_wheel(version)).extractall(staging)
            staging.replace(target)
    return target


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created): test sessions sharing the cache take turns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def installed(version: str) -> Path:
    """The python of a virtual environment with a real ``pip install claude-mpm==version`` (made once)."""
    target = CACHE / "venvs" / f"claude-mpm-{version}"
    python = target / "bin" / "python"
    done = target / ".complete"
    with locked(target.with_name(target.name + ".lock")):
        if not done.exists():
            shutil.rmtree(target, ignore_errors=True)
            _run_or_unavailable([sys.executable, "-m", "venv", str(target)], f"python -m venv {target}")
            _run_or_unavailable(
                [str(python), "-m", "pip", "install", "-q", f"claude-mpm=={version}"],
                f"pip install claude-mpm=={version}",
            )
            done.touch()
    return python


@contextlib.contextmanager
def pristine_install(version: str) -> Iterator[tuple[Path, Path]]:
    """(python, hook_handler.py) of the cached real install, its handler the release's own for the
    time of the block (and again afterwards); the install is locked meanwhile, since callers patch it."""
    python = installed(version)
    venv = python.parents[1]
    installed_handler = next(venv.glob(f"lib/python*/site-packages/{HANDLER_IN_WHEEL}"))
    with locked(venv.with_name(venv.name + ".handler.lock")):
        _reset(installed_handler, version)
        try:
            yield python, installed_handler
        finally:
            _reset(installed_handler, version)


def _reset(installed_handler: Path, version: str) -> None:
    installed_handler.write_bytes(handler(version))
    for backup in installed_handler.parent.glob(installed_handler.name + ".backup*"):
        backup.unlink()


def websocket_client() -> Path:
    """A folder holding only websocket-client (``pip install --target``): on PYTHONPATH, the client upgrades."""
    target = CACHE / "websocket-client"
    with locked(CACHE / "websocket-client.lock"):
        if not (target / "websocket").is_dir():
            staging = target.with_name("websocket-client.part")
            shutil.rmtree(staging, ignore_errors=True)
            _run_or_unavailable(
                [sys.executable, "-m", "pip", "install", "-q", "--target", str(staging), "websocket-client"],
                "pip install --target websocket-client",
            )
            staging.replace(target)
    return target


def _run_or_unavailable(command, what: str) -> None:
    """Run a pip (or venv) command; failing, it means the package index is out of reach."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise CorpusUnavailable(f"{what} failed: {result.stderr.strip()[-300:]}")


def release_row(version: str) -> str:
    """The README table row of a release: layout, fixes that apply, what ``apply`` does (to the handler as the
    wheel installs it, with its wrapper and modules beside it)."""
    from codemods.engine import assess
    from codemods.fixes.registry import FIX_NAMES
    from codemods.status import FixStatus
    from fixer.install.breakage import known_breakage

    shape, plans = assess(handler(version))
    applied = ", ".join(name for name in FIX_NAMES if plans[name].status == FixStatus.PENDING) or "none"
    outcome = "patched" if applied != "none" else "already-fixed"
    if shape.carries_upstream_rework and applied == "none":
        installed = unpacked(version) / HANDLER_IN_WHEEL
        if known_breakage(installed, installed.read_bytes()) is not None:
            outcome = "broken-upstream"
    return f"| {version} | {shape.layout} | {applied} | {outcome} |"


if __name__ == "__main__":  # python -m bench.corpus: print the README's release table
    fetch_all()
    print("| release | layout | fixes applied | `apply` |\n|---|---|---|---|")
    print("\n".join(release_row(version) for version in ALL_RELEASES))
