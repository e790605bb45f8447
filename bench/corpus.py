"""The real claude-mpm releases, downloaded from the package index once and cached in ``.cache/``.

``handler(version)`` gives the bytes of ``claude_mpm/hooks/claude_hooks/hook_handler.py`` of
that release's wheel. Nothing of claude-mpm is committed to this repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, Iterable

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
# One release of each layout that has a Socket.IO client (what the soak test drives).
SOCKETIO_LAYOUTS = ("3.2.1", "3.3.2", "3.4.0", "3.5.0", "3.6.0", "3.8.1")


class CorpusUnavailable(Exception):
    """A release could not be downloaded (no network to the package index?)."""


def _wheel(version: str) -> Path:
    wheels = CACHE / "wheels"
    found = sorted(wheels.glob(f"claude_mpm-{version}-*.whl"))
    if found:
        return found[0]
    wheels.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
               "-d", str(wheels), f"claude-mpm=={version}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    found = sorted(wheels.glob(f"claude_mpm-{version}-*.whl"))
    if result.returncode != 0 or not found:
        raise CorpusUnavailable(f"pip download claude-mpm=={version} failed: {result.stderr.strip()[-300:]}")
    return found[0]


def handler_path(version: str) -> Path:
    """The cached handler file of a release (downloaded on first use)."""
    target = CACHE / "handlers" / f"{version}.py"
    if not target.exists():
        data = zipfile.ZipFile(_wheel(version)).read(HANDLER_IN_WHEEL)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(target)
    return target


def handler(version: str) -> bytes:
    return handler_path(version).read_bytes()


def fetch_all(versions: Iterable[str] = ALL_RELEASES) -> Dict[str, Path]:
    """Download what is missing, eight at a time."""
    versions = list(versions)
    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(zip(versions, pool.map(handler_path, versions)))


def unpacked(version: str) -> Path:
    """The release's wheel unpacked (cached): a folder to put on sys.path so its handler can be imported."""
    target = CACHE / "unpacked" / version
    if not (target / "claude_mpm").is_dir():
        staging = target.with_name(f"{version}.part")
        zipfile.ZipFile(_wheel(version)).extractall(staging)
        staging.replace(target)
    return target


def release_row(version: str) -> str:
    """The README table row of a release: layout, fixes that apply, what ``apply`` does."""
    from codemods.engine import assess
    from codemods.plan import FIX_NAMES, PENDING

    shape, plans = assess(handler(version))
    applied = ", ".join(name for name in FIX_NAMES if plans[name].status == PENDING) or "none"
    return f"| {version} | {shape.layout} | {applied} | {'patched' if applied != 'none' else 'already-fixed'} |"


if __name__ == "__main__":  # python -m bench.corpus: print the README's release table
    fetch_all()
    print("| release | layout | fixes applied | `apply` |\n|---|---|---|---|")
    print("\n".join(release_row(version) for version in ALL_RELEASES))
