"""``--installed``: the hook handlers Claude Code really runs, and the Python each runs in.

claude-mpm is often installed in another environment than this tool (pipx, ``uv tool``, a venv of its
own), so "this Python's claude-mpm" answers the wrong question. Claude Code's settings name the hook
command it runs; the wrapper that command points at picks its interpreter by rules of its own
(``$VIRTUAL_ENV/bin/python``, else ``python3`` from PATH, in 3.x), and that interpreter decides which
claude-mpm -- if any -- the hook gets. This module follows those rules, as the wrappers in the releases
write them, without running the hook. It only reads Claude Code's settings, never writes them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .model import ENTRY_POINT, HANDLER_MODULE, HANDLER_PARTS, WRAPPER, RunMode, Target
from .targets import claude_mpm_version

# The wrapper scripts claude-mpm's installers register (3.x-4.0: hook_wrapper.sh beside the handler;
# 4.1+: scripts/claude-hook-handler.sh; claude-mpm-hook.sh: an older copy under ~/.claude/hooks).
PYTHON_WRAPPERS = (WRAPPER, "claude-hook-handler.sh", "claude-mpm-hook.sh")
# 5.6+ may register a bash-and-curl hook instead: no Python handler runs at all.
NO_PYTHON_WRAPPERS = ("claude-hook-fast.sh",)
SHELLS = ("bash", "sh", "zsh")
SETTINGS_NAMES = ("settings.json", "settings.local.json")
# Markers in claude-hook-handler.sh: each rule applies only to a wrapper whose text has it.
UV_TOOLS_MARK = "/.local/share/uv/tools/"
PIPX_MARK = "/.local/pipx/venvs/claude-mpm/"
SITE_PACKAGES_MARK = "/site-packages/claude_mpm/scripts"
PROBE_SECONDS = 60
# Run in the wrapper's interpreter: where its claude_mpm package is, found without importing it.
PROBE = (
    "import importlib.util, json, sys\n"
    "try:\n    spec = importlib.util.find_spec('claude_mpm')\nexcept Exception:\n    spec = None\n"
    "folders = list(spec.submodule_search_locations or []) if spec else []\n"
    "socketio = importlib.util.find_spec('socketio') is not None\n"
    "print(json.dumps({'executable': sys.executable, 'package': folders[0] if folders else None, "
    "'socketio': socketio}))"
)


@dataclass
class Discovery:
    targets: list[Target]
    messages: list[str]  # one line each: where nothing was found, registered hooks that run no Python
    warnings: list[str]  # one line each: settings files that could not be read, skipped


class SettingsError(Exception):
    """A Claude Code settings file that cannot be read or is not in Claude Code's shape."""


# -- Claude Code's settings ---------------------------------------------------------------------


def settings_files(cwd: Path, home: Path) -> Iterator[Path]:
    """The user's settings, then each project's (``.claude/settings.json``, ``settings.local.json``)
    from ``cwd`` up to the root: Claude Code runs the hooks of all of them."""
    yield home / ".claude" / "settings.json"
    for folder in (cwd, *cwd.parents):
        for name in SETTINGS_NAMES:
            yield folder / ".claude" / name


def registered_commands(path: Path) -> list[tuple[str, str]]:
    """(event, command) for every ``hooks.<Event>[].hooks[]`` entry of type ``command`` in ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SettingsError("not UTF-8 text") from None
    except OSError as error:
        raise SettingsError(f"cannot read it: {error.strerror or error}") from None
    try:
        document = json.loads(text)
    except ValueError as error:
        raise SettingsError(f"not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise SettingsError("not a JSON object")
    events = document.get("hooks", {})
    if not isinstance(events, dict):
        raise SettingsError("'hooks' is not an object")
    found = []
    for event, groups in events.items():
        if not isinstance(groups, list):
            raise SettingsError(f"hooks.{event} is not a list")
        for index, group in enumerate(groups):
            hooks = group.get("hooks", []) if isinstance(group, dict) else None
            if not isinstance(hooks, list):
                raise SettingsError(f"hooks.{event}[{index}].hooks is not a list")
            for hook in hooks:
                if isinstance(hook, dict) and hook.get("type", "command") == "command":
                    command = hook.get("command")
                    if isinstance(command, str) and command.strip():
                        found.append((event, command))
    return found


def _words(command: str) -> list[str]:
    try:
        words = shlex.split(command)
    except ValueError:  # an unbalanced quote: Claude Code's shell would fail on it too
        return []
    while words and os.path.basename(words[0]) in SHELLS:  # "bash /…/hook_wrapper.sh"
        words = words[1:]
    return words


def is_claude_mpm_command(command: str) -> bool:
    """A command one of claude-mpm's installers writes (or a plain python running its handler)."""
    words = _words(command)
    if not words:
        return False
    name = os.path.basename(words[0])
    if name in PYTHON_WRAPPERS or name in NO_PYTHON_WRAPPERS or name == ENTRY_POINT:
        return True
    return name.startswith("python") and _handler_argument(words) is not None


def _handler_argument(words: list[str]) -> RunMode | Path | None:
    """For ``python … hook_handler.py`` the file, for ``python -m <handler module>`` MODULE."""
    for index, word in enumerate(words[1:], start=1):
        if word == "-m":
            return RunMode.MODULE if words[index + 1 : index + 2] == [HANDLER_MODULE] else None
        if Path(word).parts[-3:] == HANDLER_PARTS:
            return Path(word)
    return None


# -- the wrappers' own rules --------------------------------------------------------------------


@dataclass(frozen=True)
class Interpreter:
    python: str | None  # None: the wrapper's rules find no interpreter here
    rule: str  # which of the wrapper's rules picked it, in words
    pythonpath: tuple[str, ...] = ()


def _which(name: str, environ: Mapping[str, str]) -> str | None:
    return shutil.which(name, path=environ.get("PATH", os.defpath))


def _last_resort(environ: Mapping[str, str]) -> Interpreter:
    """The rule every wrapper ends with: ``$VIRTUAL_ENV/bin/python``, else python3, else python, from PATH."""
    if environ.get("VIRTUAL_ENV"):
        venv = environ["VIRTUAL_ENV"]
        return Interpreter(os.path.join(venv, "bin", "python"), f"$VIRTUAL_ENV/bin/python, VIRTUAL_ENV={venv} here")
    for name in ("python3", "python"):
        found = _which(name, environ)
        if found:
            return Interpreter(found, f"{name} from PATH, $VIRTUAL_ENV not set")
    return Interpreter(None, "no python3 or python on PATH, $VIRTUAL_ENV not set")


def wrapper_interpreter(wrapper: Path, text: str, environ: Mapping[str, str]) -> Interpreter:
    """The interpreter ``wrapper`` (its path as registered, and its text) would pick, by its own rules."""
    folder = os.path.dirname(os.path.abspath(wrapper))  # bash's `cd "$(dirname …)" && pwd`: links kept
    if "CLAUDE_MPM_ROOT" in text:
        return _hook_handler_sh(folder, text, environ)
    checkout = os.path.normpath(os.path.join(folder, "../../../.."))
    if "../../../../venv" in text and os.path.isdir(os.path.join(checkout, "venv")):
        source = (os.path.join(checkout, "src"),)  # hook_wrapper.sh inside a source checkout
        if os.path.isfile(os.path.join(checkout, "venv", "bin", "activate")):
            return Interpreter(os.path.join(checkout, "venv", "bin", "python"), "the checkout's venv", source)
        return Interpreter(_which("python", environ), "python from PATH (a checkout without venv/bin)", source)
    return _last_resort(environ)


def _hook_handler_sh(folder: str, text: str, environ: Mapping[str, str]) -> Interpreter:
    """claude-hook-handler.sh (4.1+): a "root" by where it sits, then the venvs there, then the last resort."""
    tool_install = None
    if UV_TOOLS_MARK in text and UV_TOOLS_MARK in folder:
        root, tool_install = re.sub(r"/lib/python.*/site-packages.*", "", folder), "uv tool"
    elif PIPX_MARK in text and PIPX_MARK in folder:
        root, tool_install = re.sub(r"/lib/python.*/site-packages/.*", "", folder), "pipx"
    elif SITE_PACKAGES_MARK in text and SITE_PACKAGES_MARK in folder:
        python3 = _which("python3", environ)
        prefix = _run(python3, "import sys; print(sys.prefix)", environ) if python3 else None
        if prefix is None:
            return Interpreter(None, "no python3 on PATH to find sys.prefix with")
        root = prefix.strip()
    else:
        root = os.path.normpath(os.path.join(folder, "../../.."))
    if "uv.lock" in text and os.path.isfile(os.path.join(root, "uv.lock")) and _which("uv", environ):
        return Interpreter(os.path.join(root, ".venv", "bin", "python"), f"uv run --directory {root} python")
    own_python = os.path.join(root, "bin", "python")
    if tool_install and os.path.isfile(own_python):
        return Interpreter(own_python, f"the {tool_install} install's own python")
    source = () if tool_install or not os.path.isdir(os.path.join(root, "src")) else (os.path.join(root, "src"),)
    for venv in ("venv", ".venv"):
        if os.path.isfile(os.path.join(root, venv, "bin", "activate")):
            return Interpreter(os.path.join(root, venv, "bin", "python"), f"{root}/{venv}", source)
    chosen = _last_resort(environ)
    return dataclasses.replace(chosen, pythonpath=source)


def _run(python: str, code: str, environ: Mapping[str, str], pythonpath: tuple[str, ...] = ()) -> str | None:
    """stdout of ``python -c code``, or None when it cannot run or fails."""
    environment = dict(environ, PYTHONDONTWRITEBYTECODE="1")
    if pythonpath:
        environment["PYTHONPATH"] = os.pathsep.join([*pythonpath, *filter(None, [environ.get("PYTHONPATH")])])
    try:
        result = subprocess.run(
            [python, "-c", code],
            capture_output=True,
            text=True,
            timeout=PROBE_SECONDS,
            env=environment,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


@dataclass(frozen=True)
class Probe:
    executable: str | None  # None: the interpreter does not run
    package: str | None = None  # its claude_mpm package folder
    socketio: bool = False  # python-socketio importable (what the 3.x handler sends its events with)


def probe(interpreter: Interpreter, environ: Mapping[str, str]) -> Probe:
    """What ``interpreter`` finds, with the wrapper's PYTHONPATH, without importing claude_mpm."""
    if interpreter.python is None:
        return Probe(None)
    output = _run(interpreter.python, PROBE, environ, interpreter.pythonpath)
    try:
        found = json.loads((output or "").strip().splitlines()[-1])
    except (ValueError, IndexError):
        return Probe(None)
    return Probe(found.get("executable"), found.get("package"), bool(found.get("socketio")))


def shebang_python(script: Path, environ: Mapping[str, str]) -> str | None:
    """The interpreter a console script (``claude-mpm``, ``claude-hook``) runs with, from its first lines."""
    try:
        with script.open("rb") as stream:
            head = stream.read(4096).decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    if not head or not head[0].startswith("#!"):
        return None
    words = head[0][2:].split()
    if not words:
        return None
    if os.path.basename(words[0]) == "env":
        named = [word for word in words[1:] if not word.startswith("-") and "=" not in word]
        return _which(named[0], environ) if named else None
    if os.path.basename(words[0]) == "sh" and len(head) > 1 and head[1].startswith("'''exec' "):
        # pip's form for long interpreter paths: '''exec' "/path/python" "$0" "$@"
        rest = shlex.split(head[1][len("'''exec' ") :])
        return rest[0] if rest else None
    return words[0]


# -- one target per registered command ----------------------------------------------------------


def _package_handler(package: str) -> Path:
    return Path(package, *HANDLER_PARTS[:2], HANDLER_PARTS[2])


def _handler_near(folder: Path) -> Path | None:
    """The handler of the claude_mpm package a wrapper sits in (for messages when its python has none)."""
    for parent in (folder, *folder.parents):
        if parent.name == "claude_mpm":
            return _package_handler(str(parent))
    return None


def _same(first: str | Path, second: str | Path) -> bool:
    return os.path.realpath(first) == os.path.realpath(second)


def _install_hint(handler: Path | None) -> str:
    version = claude_mpm_version(handler) if handler else None
    return f"claude-mpm=={version}" if version else "claude-mpm"


def _venv_of(handler: Path | None) -> Path | None:
    """The virtual environment a handler is installed in (the folder holding pyvenv.cfg), if any."""
    if handler is None:
        return None
    for folder in Path(os.path.realpath(handler)).parents:
        if (folder / "pyvenv.cfg").is_file():
            return folder
    return None


def _cannot_import(python: str, rule: str, base: Target, socketio: bool) -> str:
    consequence = (
        "every hook event fails at import (nothing is delivered)"
        if base.run_mode is RunMode.MODULE
        else "the hook runs without claude-mpm's code"
        + ("" if socketio else " and without python-socketio: every event is lost")
    )
    venv = _venv_of(base.handler)
    if base.wrapper is None:  # an entry point or a python named in the command: nothing else to pick
        where = f"reinstall claude-mpm for it: {python} -m pip install --force-reinstall {_install_hint(base.handler)}"
    elif venv:
        where = (
            f"start Claude Code with VIRTUAL_ENV={venv} (or {venv}/bin first on PATH), or install it there: "
            f"{python} -m pip install {_install_hint(base.handler)}"
        )
    else:
        where = f"put an interpreter that has claude-mpm first on PATH, or: {python} -m pip install claude-mpm"
    return f"the registered hook runs {python} ({rule}), which cannot import claude_mpm: {consequence}; fix: {where}"


def target_for_command(command: str, origin: str, environ: Mapping[str, str], cwd: Path) -> Target | str:
    """The handler ``command`` runs and in which Python; a message (str) when it runs no Python handler."""
    words = _words(command)
    first = words[0]
    name = os.path.basename(first)
    if name in NO_PYTHON_WRAPPERS:
        return f"{origin}: {command} runs no Python handler (bash and curl): nothing to patch or verify"
    if name == ENTRY_POINT or name.startswith("python"):
        return _python_command(command, words, origin, environ)
    wrapper = Path(os.path.abspath(os.path.join(cwd, os.path.expanduser(first))))
    base = Target(None, None, origin, command, wrapper=wrapper)
    try:
        text = wrapper.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        reason = "does not exist" if isinstance(error, FileNotFoundError) else f"cannot be read ({error.strerror})"
        return dataclasses.replace(
            base,
            handler=_handler_near(wrapper.parent),
            error=f"the registered hook command {wrapper} {reason}: every hook event fails "
            "(claude-mpm uninstalled or moved?); fix: register the hooks again with the claude-mpm you use",
        )
    mode = RunMode.MODULE if HANDLER_MODULE in text else RunMode.SCRIPT
    interpreter = wrapper_interpreter(wrapper, text, environ)
    beside = wrapper.parent / HANDLER_PARTS[2] if mode is RunMode.SCRIPT else _handler_near(wrapper.parent)
    base = dataclasses.replace(base, run_mode=mode, pythonpath=interpreter.pythonpath, handler=beside)
    return _checked(base, interpreter, environ)


def _python_command(command: str, words: list[str], origin: str, environ: Mapping[str, str]) -> Target:
    """``claude-hook`` (the console script, by name or path) or ``python …`` running the handler."""
    base = Target(None, None, origin, command, run_mode=RunMode.MODULE)
    found = _which(words[0], environ) if os.sep not in words[0] else words[0]
    if found is None or not os.path.isfile(found):
        return dataclasses.replace(
            base,
            error=f"{words[0]} is not on PATH: every hook event fails; fix: put the folder of claude-mpm's "
            f"{words[0]} on PATH (pipx/uv tool: ~/.local/bin), or register the hooks again",
        )
    if os.path.basename(words[0]) == ENTRY_POINT:
        python = shebang_python(Path(found), environ)
        rule = f"the interpreter of {found}"
    else:
        python, rule = found, "named in the command"
        handler_argument = _handler_argument(words)
        if isinstance(handler_argument, Path):
            base = dataclasses.replace(base, run_mode=RunMode.SCRIPT, handler=handler_argument)
    return _checked(base, Interpreter(python, rule), environ)


def _checked(base: Target, interpreter: Interpreter, environ: Mapping[str, str]) -> Target:
    """``base`` with its python and handler as the interpreter finds them, or the error that stops it."""
    if interpreter.python is None:
        return dataclasses.replace(
            base, error=f"the registered hook finds no interpreter ({interpreter.rule}): every hook event fails"
        )
    found = probe(interpreter, environ)
    executable, package = found.executable, found.package
    with_python = dataclasses.replace(base, python=executable or interpreter.python)
    if executable is None:
        return dataclasses.replace(
            with_python,
            error=f"the registered hook runs {interpreter.python} ({interpreter.rule}), which does not run "
            "here: every hook event fails; fix: install that Python, or register the hooks again",
        )
    if package is None:
        return dataclasses.replace(
            with_python,
            error=_cannot_import(executable, interpreter.rule, base, found.socketio),
        )
    if base.run_mode is RunMode.MODULE:
        return dataclasses.replace(with_python, handler=_package_handler(package))
    own = base.handler.parent.parent.parent if base.handler else None
    if own is not None and not _same(own, package):
        return dataclasses.replace(
            with_python,
            error=f"the registered hook runs {base.handler} in {executable} ({interpreter.rule}), which imports "
            f"another claude_mpm ({package}): the handler runs against another release's code; fix: run it in "
            f"the Python it is installed for (VIRTUAL_ENV={_venv_of(base.handler) or '…'})",
        )
    return with_python


# -- everything --installed looks at -----------------------------------------------------------


def _display(path: Path, home: Path) -> str:
    try:
        return "~/" + str(path.relative_to(home))
    except ValueError:
        return str(path)


def discover(cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> Discovery:
    """The targets of ``--installed`` without ``--python``, in order: the handlers Claude Code's settings
    name; the claude-mpm of the ``claude-mpm`` command on PATH; this interpreter's. Each file once."""
    environ = os.environ if environ is None else environ
    cwd = Path(os.path.abspath(cwd or os.getcwd()))
    home = Path(environ.get("HOME") or Path.home())
    found = Discovery([], [], [])
    user_settings, *project_settings = settings_files(cwd, home)
    seen = {os.path.realpath(user_settings)}
    if os.path.lexists(user_settings):
        _read_settings(user_settings, home, cwd, environ, found)
    else:
        found.messages.append(f"{_display(user_settings, home)}: no such file (no hooks registered for this user)")
    found_project = False
    for path in project_settings:
        if os.path.lexists(path) and os.path.realpath(path) not in seen:
            seen.add(os.path.realpath(path))
            found_project = True
            _read_settings(path, home, cwd, environ, found)
    if not found_project:
        found.messages.append(f"no .claude/settings.json or settings.local.json in {cwd} or above")
    command_line = _which("claude-mpm", environ)
    python = shebang_python(Path(command_line), environ) if command_line else None
    if python:
        origin = f"the claude-mpm command on PATH ({command_line})"
        target = _checked(Target(None, None, origin, run_mode=RunMode.MODULE), Interpreter(python, ""), environ)
        if target.error is None:
            found.targets.append(target)
        else:  # a claude-mpm command whose Python has no claude_mpm: no hook of Claude Code's
            found.messages.append(f"{command_line}: its Python ({python}) has no claude-mpm")
    elif not command_line:
        found.messages.append("no claude-mpm command on PATH")
    here = _this_interpreter()
    if here is not None:
        found.targets.append(here)
    else:
        found.messages.append(f"this Python ({sys.executable}) has no claude-mpm")
    found.targets = [_missing_file(target) for target in _once(found.targets)]
    return found


def _missing_file(target: Target) -> Target:
    """A claude_mpm package without the handler file (a release that moved it): an error, not a crash later."""
    if target.error is None and target.handler is not None and not target.handler.is_file():
        return dataclasses.replace(target, error=f"no hook handler in this claude-mpm: {target.handler} is missing")
    return target


def _read_settings(path: Path, home: Path, cwd: Path, environ: Mapping[str, str], found: Discovery) -> None:
    """Add a target (or a message) per distinct claude-mpm command that the settings file ``path`` registers."""
    shown = _display(path, home)
    try:
        commands = registered_commands(path)
    except SettingsError as error:
        found.warnings.append(f"{shown}: {error}; skipped")
        return
    events: dict[str, list[str]] = {}
    for event, command in commands:
        if is_claude_mpm_command(command):
            events.setdefault(command, []).append(event)
    for command, named in events.items():
        target = target_for_command(command, f"{shown} ({', '.join(named)})", environ, cwd)
        if isinstance(target, str):
            found.messages.append(target)
        else:
            found.targets.append(target)


def _this_interpreter() -> Target | None:
    import importlib.util

    spec = importlib.util.find_spec("claude_mpm")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = next(iter(spec.submodule_search_locations))
    return Target(_package_handler(package), sys.executable, f"this Python ({sys.executable})")


def _once(targets: list[Target]) -> list[Target]:
    """Each handler (by real path) once, as first found; the later finds join its origin."""
    kept: dict[str, Target] = {}
    for target in targets:
        key = os.path.realpath(target.handler) if target.handler else f"{target.origin}\0{target.command}"
        if key in kept:
            first = kept[key]
            kept[key] = dataclasses.replace(first, origin=f"{first.origin}; also {target.origin}")
        else:
            kept[key] = target
    return list(kept.values())
