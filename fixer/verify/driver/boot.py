"""How to start the driver in another interpreter: its package loaded by path, under a name of its own.

The install's interpreter has claude-mpm and its dependencies, not this tool; loaded so, the driver's
modules import each other (relatively) and nothing else of ours, and no folder of ours goes on
``sys.path`` to shadow a module of theirs.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = "fix_memory_leaks_driver"
FOLDER = Path(__file__).resolve().parent
BOOT = (
    "import importlib.util, sys\n"
    "folder = sys.argv.pop(1)\n"
    f"spec = importlib.util.spec_from_file_location({PACKAGE!r}, folder + '/__init__.py', "
    "submodule_search_locations=[folder])\n"
    "driver = importlib.util.module_from_spec(spec)\n"
    "sys.modules[spec.name] = driver\n"
    "spec.loader.exec_module(driver)\n"
    "sys.exit(driver.main())\n"
)


def driver_command(python: str, *arguments: str) -> list[str]:
    """``python`` running the driver's command line with ``arguments``."""
    return [python, "-c", BOOT, str(FOLDER), *arguments]
