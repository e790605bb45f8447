"""The command line: ``main(argv) -> int``.

Only argparse is imported up front: ``--help`` must be instant, so libcst, yaml and rich are
imported by the commands that need them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from contextlib import suppress
from functools import partial
from pathlib import Path
from typing import Callable

from codemods.fixes.registry import FIX_NAMES
from codemods.status import FileStatus

from . import __version__
from .patch.report import Command, Format, Report, Rerun
from .patch.results import FileResult

EPILOG = """\
exit codes: 0 done or nothing to do; 1 (check) fixes are pending, or claude-mpm's own hook is known to
break (broken-upstream); 2 an error (unparsable or
unrecognised file, PATH with no handler, bad config, failed verification) or a handler damaged
by claude-mpm's fix_memory_leaks.py (check; apply repairs it from the .backup that script left):
the message names the file and the reason.
"""

EXAMPLES = {
    "apply": "examples:\n  fix-memory-leaks apply --dry-run            # show the diff, write nothing\n"
    "  fix-memory-leaks apply --installed          # patch the hooks Claude Code runs\n"
    "  fix-memory-leaks apply path/to/site-packages --select singleton",
    "check": "examples:\n  fix-memory-leaks check --installed          # exit 1 when fixes are pending\n"
    "  fix-memory-leaks check . --format github   # annotations for GitHub Actions",
    "restore": "example:\n  fix-memory-leaks restore --installed        # put the pristine original back",
    "fixes": "example:\n  fix-memory-leaks fixes",
    "init": "example:\n  fix-memory-leaks init                       # writes ./.claude-mpm/memory_config.yaml",
    "verify": "examples:\n  fix-memory-leaks verify --installed          # run the hooks Claude Code runs, for real\n"
    "  fix-memory-leaks verify --installed --python ~/.venvs/mpm/bin/python --format json",
    "monitor": "examples:\n  fix-memory-leaks monitor --interval 5        # live view until Ctrl+C\n"
    "  fix-memory-leaks monitor --once --threshold-mb 300 || echo 'a process is above 300 MB'",
}
VERIFY_EXITS = """\
exit codes: 0 every handler passes; 1 any fails (hangs, loses events, leaves connections open,
lets a collection outgrow its limit); 2 an error (no handler, unparsable file, missing packages
in the interpreter).
"""
MONITOR_EXITS = """\
exit codes: 0 normally (Ctrl+C ends the live view); with --once, 1 when a process is above the
threshold; 2 an error (bad config or option).
"""


class UsageError(Exception):
    """Arguments that make sense to argparse but not to us (exit 2, one line; under --format json or github, the
    report of that one error, naming ``path``: the PATH or file it is about, "" when none).

    The ``type=`` converters below raise it: argparse lets it through (it handles only ValueError,
    TypeError and ArgumentTypeError, with a usage block), so ``main`` reports it in one line."""

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.reason, self.path = reason, path


def fix_list(text: str) -> tuple[str, ...] | None:
    """``--select FIX[,FIX]``: known fix names (what they need is added later, with a note); an empty
    value is no selection (the config's, or every fix)."""
    from codemods.fixes.registry import UnknownFix, resolve_selection

    if not text:
        return None
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    try:
        resolve_selection(names)
    except UnknownFix as error:
        raise UsageError(str(error)) from None
    return names


def count(option: str) -> Callable[[str], int]:
    """A ``type=`` for an option that counts something: a whole number, at least 1."""

    def count(text: str) -> int:
        value = int(text)  # not a number: argparse says "invalid count value"
        if value < 1:
            raise UsageError(f"{option} must be at least 1, not {value}")
        return value

    return count


def formats(parser: argparse.ArgumentParser, *allowed: Format) -> None:
    """``--format``, parsed as text (argparse's own message for a wrong one); ``main`` makes it a Format."""
    parser.add_argument("--format", choices=[output.value for output in allowed], default=Format.TEXT.value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fix-memory-leaks",
        description="Patch claude-mpm's hook handler (hook_handler.py) so long sessions stop leaking memory.",
        epilog="examples:\n"
        "  fix-memory-leaks check --installed          # what is pending in the hooks Claude Code runs\n"
        "  fix-memory-leaks apply --installed\n"
        "  fix-memory-leaks COMMAND --help             # examples for each command\n\n" + EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    targets = argparse.ArgumentParser(add_help=False)
    targets.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="a hook_handler.py, or a folder searched for **/hooks/claude_hooks/hook_handler.py (default: .)",
    )
    targets.add_argument(
        "--installed",
        action="store_true",
        help="the handlers Claude Code's settings name, the claude-mpm command's, this Python's",
    )
    targets.add_argument("--python", metavar="PATH", help="only the claude-mpm installed for this interpreter")
    colour = argparse.ArgumentParser(add_help=False)
    colour.add_argument("--no-color", action="store_true", help="no colour (also: NO_COLOR=1)")
    output = argparse.ArgumentParser(add_help=False, parents=[colour])
    loudness = output.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", action="store_true", help="print only errors and the summary")
    loudness.add_argument("-v", "--verbose", action="store_true", help="show every fix's reason")
    configured = argparse.ArgumentParser(add_help=False)
    configured.add_argument(
        "--config", metavar="FILE", help="YAML config (default: nearest .claude-mpm/memory_config.yaml, or .json)"
    )
    fixing = argparse.ArgumentParser(add_help=False, parents=[configured])
    fixing.add_argument(
        "--select",
        type=fix_list,
        metavar="FIX[,FIX]",
        help=f"only these fixes (and what they need): {', '.join(FIX_NAMES)}",
    )
    fixing.add_argument(
        "--jobs", "-j", type=count("--jobs"), metavar="N", help="files processed in parallel (default: all cores)"
    )

    def command(name: str, help_text: str, parents, exits: str = EPILOG) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=parents,
            epilog=EXAMPLES[name] + "\n\n" + exits,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    apply = command("apply", "patch the handlers (a .backup of each original is kept)", [targets, fixing, output])
    apply.add_argument("--dry-run", action="store_true", help="print the unified diff, write nothing")
    formats(apply, Format.TEXT, Format.JSON)
    check = command("check", "report pending fixes; exit 1 when any is pending", [targets, fixing, output])
    formats(check, *Format)
    restore = command("restore", "put the newest backup back (the backup is kept)", [targets, output])
    formats(restore, Format.TEXT, Format.JSON)
    restore.add_argument("--force", action="store_true", help="restore even over a file this tool did not patch")
    verify = command(
        "verify",
        "run the handler for real, as claude-mpm does, and say whether it leaks, loses events or hangs",
        [targets, output],
        exits=VERIFY_EXITS,
    )
    verify.add_argument(
        "--events",
        type=count("--events"),
        metavar="N",
        help="hook events per run (default: 8; a handler that hangs on each takes ~2 minutes)",
    )
    formats(verify, Format.TEXT, Format.JSON)
    command("fixes", "list the fixes", [])
    init = command("init", "write a commented .claude-mpm/memory_config.yaml holding the defaults", [])
    init.add_argument("folder", nargs="?", default=".", metavar="PATH", help="the project folder (default: .)")
    init.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    monitor = command(
        "monitor",
        "watch the memory (RSS) of running claude-mpm and hook-handler processes",
        [configured, colour],
        exits=MONITOR_EXITS,
    )
    monitor.add_argument("--once", action="store_true", help="print one table and exit (plain when piped)")
    monitor.add_argument(
        "--interval",
        type=float,
        metavar="SECONDS",
        help="refresh period (default: the config's memory_monitoring.interval_seconds, else 2)",
    )
    monitor.add_argument(
        "--threshold-mb",
        type=int,
        metavar="MB",
        help="warn above this RSS (default: the config's memory_monitoring.alert_threshold_mb, else 500)",
    )
    return parser


# What Ctrl-C leaves behind, in each command's own words.
WRITES_INTERRUPTED = "every file is either untouched or fully patched"
INTERRUPTED = {
    Command.VERIFY: "every hook and server verify started is stopped; it changes nothing on disk",
    Command.CHECK: "check writes nothing",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = None
    try:
        args = parser.parse_args(argv)
        if hasattr(args, "format"):
            args.format = Format(args.format)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        return COMMANDS[Command(args.command)](args)
    except UsageError as error:
        output = getattr(args, "format", Format.TEXT)
        if args is None or output is Format.TEXT:
            print(f"fix-memory-leaks: error: {error}", file=sys.stderr)
            return 2
        failed = FileResult(error.path, FileStatus.ERROR, message=error.reason)
        return max(Report(Command(args.command), [failed]).render(output), 2)
    except KeyboardInterrupt:
        command = getattr(args, "command", None)
        words = INTERRUPTED.get(Command(command), WRITES_INTERRUPTED) if command else WRITES_INTERRUPTED
        print(f"fix-memory-leaks: interrupted; {words}", file=sys.stderr)
        return 130


def _handlers(args, python_runs_them: bool = False) -> tuple[list[Path], list[FileResult]]:
    """The handlers to work on, and a failed result per ``--installed`` target that could not be located.

    ``--python PY`` alone: the claude-mpm installed for PY; ``python_runs_them`` (verify): with PATHs, it names
    the interpreter that runs them."""
    from .install.targets import TargetError, find_handlers, installed_claude_mpm

    try:
        if args.installed and args.paths:
            raise UsageError("give PATHs or --installed, not both")
        if args.installed and args.python is None:
            return _installed_targets(args)
        if args.python and not args.paths:
            return find_handlers([str(installed_claude_mpm(args.python))]), []
        if args.python and not python_runs_them:
            raise UsageError("give PATHs or --python, not both (--python checks the claude-mpm installed for it)")
        return find_handlers(args.paths or ["."]), []
    except TargetError as error:
        raise UsageError(*_named(str(error), args.paths or ["."])) from None


def _named(message: str, paths: Sequence[str]) -> tuple[str, str]:
    """(reason, path) of a TargetError's message, which begins with the PATH it is about."""
    for path in paths:
        if message.startswith(f"{path}: "):
            return message[len(path) + 2 :], path
    return message, ""


def _installed_targets(args) -> tuple[list[Path], list[FileResult]]:
    """``--installed`` without ``--python``: the hooks Claude Code runs (fixer.install.discovery), each said on stderr
    with where it came from, and a failed result per target that could not be located or is run wrongly."""
    paths, failed = [], []
    for target in _discovered(args):
        if target.handler and target.handler.is_file():  # a hook run wrongly is still a file to check
            paths.append(target.handler)
        if target.error is not None:
            failed.append(FileResult(target.label, FileStatus.ERROR, message=f"{target.error} [from {target.origin}]"))
    return paths, failed


def _discovered(args):
    """The targets of ``--installed``, each found one said on stderr with where it came from."""
    from .install.discovery import discover

    found = discover()
    for warning in found.warnings:
        print(f"fix-memory-leaks: warning: {warning}", file=sys.stderr)
    if not found.targets:
        raise UsageError(
            "no claude-mpm hook found: "
            + "; ".join(found.messages)
            + " (give the interpreter that has it: --installed --python PATH)"
        )
    if not args.quiet:
        for target in found.targets:
            if target.error is None:
                via = f": {target.command}" if target.command else ""
                print(
                    f"fix-memory-leaks: {target.handler}: from {target.origin}{via}; runs in {target.python}",
                    file=sys.stderr,
                )
        for message in found.messages:
            print(f"fix-memory-leaks: {message}", file=sys.stderr)
    return found.targets


def _rerun(args, selection: bool = True) -> Rerun:
    """What a next-step hint repeats: the handlers' arguments and, where the command has them, --config/--select."""
    targets = [
        *args.paths,
        *(["--installed"] if args.installed else []),
        *(["--python", args.python] if args.python else []),
    ]
    chosen: list[str] = []
    if selection and args.config is not None:
        chosen += ["--config", args.config]
    if selection and args.select:
        chosen += ["--select", ",".join(args.select)]
    return Rerun(tuple(targets), tuple(chosen))


def _selection(args):
    """(config, selected fix names, notes): --select wins over the config's ``fixes``."""
    from codemods.fixes.registry import resolve_selection

    from .patch.config import ConfigError, resolve_config

    try:
        config = resolve_config(args.config)
    except ConfigError as error:
        raise UsageError(str(error)) from None
    names = args.select if args.select is not None else config.fixes or FIX_NAMES  # both are checked names
    selected, notes = resolve_selection(names)
    return config, selected, notes


def _run(function, paths: Sequence[Path], args, preload_libcst: bool = False):
    """Results in the order of ``paths``; files spread over processes when there are several."""
    from .patch.parallel import run_all

    progress = not args.quiet and args.format is Format.TEXT and sys.stderr.isatty()
    return run_all(function, paths, args.jobs or os.cpu_count() or 1, progress, preload_libcst, args.no_color)


def _options(args):
    from .patch.report import Options

    return Options(quiet=args.quiet, verbose=args.verbose, no_color=args.no_color)


def cmd_apply(args) -> int:
    from .patch.pipeline import apply_file
    from .patch.report import write_diff

    config, selected, notes = _selection(args)
    paths, failed = _handlers(args)
    work = partial(apply_file, select=selected, settings=config.settings, dry_run=args.dry_run)
    results = failed + _run(work, paths, args, preload_libcst=True)
    if args.dry_run and args.format is Format.TEXT:
        for result in results:
            if result.diff:
                write_diff(result.diff, args.no_color)
    report = Report(Command.APPLY, results, config.source, notes, dry_run=args.dry_run, rerun=_rerun(args))
    return report.render(args.format, _options(args))


def cmd_check(args) -> int:
    from .patch.pipeline import check_file

    config, selected, notes = _selection(args)
    paths, failed = _handlers(args)
    results = failed + _run(partial(check_file, select=selected), paths, args)
    return Report(Command.CHECK, results, config.source, notes, rerun=_rerun(args)).render(args.format, _options(args))


def cmd_restore(args) -> int:
    from .patch.pipeline import restore_file

    paths, failed = _handlers(args)
    results = failed + [restore_file(path, force=args.force) for path in paths]
    return Report(Command.RESTORE, results, rerun=_rerun(args, selection=False)).render(args.format, _options(args))


def cmd_verify(args) -> int:
    from .install.model import Target
    from .verify import DEFAULT_EVENTS, VerifyReport, progress_display, verify_target

    events = DEFAULT_EVENTS if args.events is None else args.events
    quiet = args.quiet or args.format is Format.JSON
    if args.installed and args.python is None and not args.paths:
        targets = _discovered(args)  # a target that could not be located is reported as an error
    else:
        paths, _ = _handlers(args, python_runs_them=True)
        targets = [Target(path, args.python or sys.executable, origin="") for path in paths]
    with progress_display(sys.stderr, quiet=quiet, no_color=args.no_color) as display:
        results = [
            verify_target(target, events, display.for_file(Path(target.label)), display.announce) for target in targets
        ]
    return VerifyReport(results).render(args.format, _options(args))


def cmd_fixes(args) -> int:
    from codemods.fixes.registry import FIXES

    for fix in FIXES:
        needs = f" (needs {', '.join(fix.requires)})" if fix.requires else ""
        print(f"{fix.name}{needs}\n    {fix.description}")
    return 0


def cmd_init(args) -> int:
    from .patch.init import InitError, write_default_config

    try:
        written = write_default_config(Path(args.folder))
    except InitError as error:
        raise UsageError(str(error)) from None
    if not args.quiet:
        print(f"wrote {written} (the built-in defaults, commented); edit it to taste", file=sys.stderr)
    return 0


def cmd_monitor(args) -> int:
    from .monitor import print_once, watch
    from .patch.config import ConfigError, resolve_config

    try:
        config = resolve_config(args.config)
    except ConfigError as error:
        raise UsageError(str(error)) from None
    threshold = config.monitor.alert_threshold_mb if args.threshold_mb is None else args.threshold_mb
    interval = config.monitor.interval_seconds if args.interval is None else args.interval
    if threshold <= 0:
        raise UsageError(f"--threshold-mb must be positive, not {threshold}")
    if not 0 < interval < float("inf"):
        raise UsageError(f"--interval must be a positive number of seconds, not {interval:g}")
    if args.once:
        return print_once(threshold, args.no_color)
    with suppress(KeyboardInterrupt):  # Ctrl+C is how the live view ends
        watch(threshold, interval, args.no_color, config.source)
    return 0


COMMANDS: dict[Command, Callable[[argparse.Namespace], int]] = {
    Command.APPLY: cmd_apply,
    Command.CHECK: cmd_check,
    Command.RESTORE: cmd_restore,
    Command.FIXES: cmd_fixes,
    Command.INIT: cmd_init,
    Command.MONITOR: cmd_monitor,
    Command.VERIFY: cmd_verify,
}
