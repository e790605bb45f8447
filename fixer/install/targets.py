"""Finding the hook handlers a command works on."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from .model import HANDLER_PARTS

SKIPPED_FOLDERS = {".git", "__pycache__", "node_modules", ".tox", ".mypy_cache", ".pytest_cache"}


class TargetError(Exception):
    """A PATH that does not exist or holds no handler: a CI step pointed at the wrong place."""


def find_handlers(paths: Iterable[str]) -> list[Path]:
    """Each PATH that is a file, and every ``**/hooks/claude_hooks/hook_handler.py`` under each folder."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            inside = sorted(_walk(path))
            if not inside:
                raise TargetError(
                    f"{raw}: no {'/'.join(HANDLER_PARTS)} in this folder "
                    "(point PATH at claude-mpm's install folder, or use --installed)"
                )
            found.extend(inside)
        elif os.path.lexists(path):
            raise TargetError(f"{raw}: not a file or folder (a broken link?)")
        else:
            raise TargetError(f"{raw}: no such file or folder")
    unique: dict[str, Path] = {}  # real path -> the path as found
    for path in found:
        unique.setdefault(os.path.realpath(path), path)
    return list(unique.values())


def _walk(root: Path):
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if name not in SKIPPED_FOLDERS]
        if HANDLER_PARTS[-1] in files and Path(folder).parts[-2:] == HANDLER_PARTS[:2]:
            yield Path(folder) / HANDLER_PARTS[-1]


def claude_mpm_version(handler: Path) -> str | None:
    """The claude-mpm release installed around ``handler``, from the nearest ``claude_mpm-*.dist-info`` folder
    up the tree (None when there is none: a source checkout, or a bare copy of the file)."""
    for folder in Path(os.path.realpath(handler)).parents:
        found = sorted(folder.glob("claude_mpm-*.dist-info"))
        if found:
            return found[-1].name[len("claude_mpm-") : -len(".dist-info")]
    return None


FIND_PACKAGE = (
    "import importlib.util, sys; s = importlib.util.find_spec('claude_mpm'); "
    "sys.exit(3) if s is None else print(list(s.submodule_search_locations)[0])"
)


def installed_claude_mpm(python: str | None = None) -> Path:
    """The claude_mpm package folder of this interpreter, or of ``python``, found without importing it."""
    if python is None:
        import importlib.util

        spec = importlib.util.find_spec("claude_mpm")
        if spec is None or not spec.submodule_search_locations:
            raise TargetError(f"{sys.executable}: claude-mpm is not installed for this Python (pip install claude-mpm)")
        return Path(next(iter(spec.submodule_search_locations)))
    import subprocess  # only for --python: the other paths start no process

    interpreter = python
    try:
        result = subprocess.run([interpreter, "-c", FIND_PACKAGE], capture_output=True, text=True, timeout=60)
    except OSError as error:
        raise TargetError(f"{interpreter}: cannot run this Python: {error.strerror or error}") from None
    except subprocess.TimeoutExpired:
        raise TargetError(f"{interpreter}: did not answer within 60 s") from None
    if result.returncode == 3:
        raise TargetError(f"{interpreter}: claude-mpm is not installed for this Python (pip install claude-mpm)")
    if result.returncode != 0 or not result.stdout.strip():
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise TargetError(f"{interpreter}: could not locate claude_mpm: {detail}")
    return Path(result.stdout.strip())
