"""How an install runs its hook, read from what it ships: the wrapper, its environment, its reply.

claude-mpm changed this several times (``python hook_handler.py`` in 3.x, ``python -m`` from
4.0.11, ``claude-hook-handler.sh`` from 4.1.10, ``claude-hook-fast.sh`` or the ``claude-hook``
entry point in 5.x), so nothing here is a table of versions: the wrapper's own lines say what
it runs, what it exports and what it replies when the handler fails, and the installer's code
says which wrapper Claude Code is given. Pure functions over texts, plus :func:`hook_run`,
which reads the install's files.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..install.model import ENTRY_POINT, HOOKS_FOLDER, WRAPPER, Target
from .driver.contract import DASHBOARD_PORT, Launch, Reply, contract

HANDLER_SCRIPT = "claude-hook-handler.sh"  # claude_mpm/scripts/, 4.1.10 and later
FAST_SCRIPT = "claude-hook-fast.sh"  # claude_mpm/scripts/, 5.x: bash and curl, no Python
INSTALLER = "installer.py"
# The wrapper's line that starts the handler: "$PYTHON_CMD" ARGS "$@" (after `exec` or `if !`).
INVOCATION = re.compile(r'"?\$PYTHON_CMD"?\s+(?P<args>[^\n]*?)\s+"\$@"')
EXPORT = re.compile(r'^export\s+(?P<name>[A-Z_][A-Z0-9_]*)="(?P<value>[^"$]*|\$\{(?P=name):-(?P<default>[^}]*)\})"\s*$')
FALLBACK_REPLY = re.compile(r"echo\s+'(?P<reply>\{[^']*\})'")
# A port taken from the environment (with 8765 as its default) is not hard-coded; any other 8765 is.
PORT_FROM_ENVIRONMENT = re.compile(
    r"""environ\.get\(\s*["'][A-Z_]+["']\s*,\s*["']?8765["']?\s*\)|getenv\(\s*["'][A-Z_]+["']\s*,\s*["']?8765["']?\s*\)"""
    r"""|\$\{[A-Z_]+:-8765\}|export\s+[A-Z_]+="8765\""""
)
HARD_CODED_PORT = re.compile(rf"\b{DASHBOARD_PORT}\b")


@dataclass
class HookRun:
    """What verify runs for one event and what it expects, with the file each fact came from."""

    launch: Launch
    how: str  # one line: what runs, and which file said so
    sources: bytes  # the code that runs (it decides which events the dashboard gets)
    hard_coded_port: bool  # the hook reaches 8765 whatever its environment says
    has_dashboard: bool  # the install ships a dashboard that expects the hook's events
    notes: list[str] = field(default_factory=list)

    def description(self) -> dict:
        """How the hook was run, for the report."""
        launch = self.launch
        return {"how": self.how, "command": launch.command, "environment": launch.environment, "reply": launch.reply}


def package_folder(handler: Path) -> Path | None:
    """``claude_mpm/`` of an install whose ``claude_mpm/hooks/claude_hooks/hook_handler.py`` this is."""
    folder = handler.parent.parent.parent
    return folder if handler.parent == folder / HOOKS_FOLDER else None


def invocation(wrapper: str) -> list[str] | None:
    """What the wrapper gives the interpreter before the event's arguments, or None (no Python)."""
    match = INVOCATION.search(wrapper)
    return shlex.split(match["args"]) if match else None


def exported(wrapper: str) -> dict[str, str]:
    """The variables the wrapper exports unconditionally with a literal value (or a literal default)."""
    environment: dict[str, str] = {}
    depth = 0
    for line in wrapper.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] in ("if", "case") or line.rstrip().endswith("{"):
            depth += 1
        elif words[0] in ("fi", "esac", "}"):
            depth = max(depth - 1, 0)
        elif depth == 0 and (match := EXPORT.match(line.strip())):
            environment[match["name"]] = match["default"] if match["default"] is not None else match["value"]
    return environment


def reply_contract(*texts: str) -> str:
    """The replies Claude Code gets from this release (a :func:`~.driver.contract.contract`): those its
    wrapper writes itself, else the handler's."""
    for text in texts:
        found: list[Reply] = []
        for line in text.splitlines():
            if line.lstrip().startswith("#"):
                continue
            for match in FALLBACK_REPLY.finditer(line):
                try:
                    reply = json.loads(match["reply"])
                except ValueError:
                    continue
                kind = next((key for key in Reply if key.value in reply), None)
                if kind and kind not in found:
                    found.append(kind)
        if found:
            return contract(*found)
    for text in texts:
        if re.search(r"""["']continue["']\s*:\s*True""", text):
            return contract(Reply.CONTINUE)
    return contract(Reply.ACTION)


def hard_codes_port(text: str) -> bool:
    """Does this code reach port 8765 other than as the default of an environment variable?"""
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return bool(HARD_CODED_PORT.search(PORT_FROM_ENVIRONMENT.sub("", code)))


def registered_script(installer: str, scripts: Path) -> Path | None:
    """The script claude-mpm's installer registers with Claude Code, where its code names one that exists."""
    prefers_fast = re.search(r"use_fast_hook:\s*bool\s*=\s*True", installer) is not None
    candidates = [FAST_SCRIPT] if prefers_fast else []
    candidates.append(HANDLER_SCRIPT)
    for name in candidates:
        if name in installer and (scripts / name).is_file():
            return scripts / name
    return None


def entry_point(package: Path, name: str = ENTRY_POINT) -> tuple[str, str] | None:
    """(module, function) of the console script ``name`` in the install's metadata."""
    for entry_points in package.parent.glob("claude_mpm-*.dist-info/entry_points.txt"):
        for line in entry_points.read_text(errors="replace").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == name and ":" in value:
                module, _, function = value.strip().partition(":")
                return module.strip(), function.strip()
    return None


def hook_run(target: Target) -> HookRun:
    """How the wrapper of ``target``'s install runs its hook (``target.command`` when settings name one)."""
    if target.handler is None or target.python is None:
        raise LookupError(target.error or "not located")
    handler = target.handler.resolve()
    package = package_folder(handler)
    handler_text = handler.read_text(errors="replace")
    script = None if package is None else _script(target, package, hooks := package / HOOKS_FOLDER)
    if package is None or script is None:  # no wrapper (a copy, a fixture): run it as 3.x's wrapper does
        return HookRun(
            Launch.by_path(target.python, handler),
            "python hook_handler.py (no wrapper beside it: as 3.x's hook_wrapper.sh runs it)",
            handler_text.encode(),
            hard_codes_port(handler_text),
            has_dashboard="socketio" in handler_text,  # no install around it: the handler's own client says
        )
    notes = []
    if target.command and isinstance(script, Path) and script.name not in target.command:
        notes.append(f"the registered command {target.command!r} is not a hook this tool can run: ran {script.name}")
    code = "\n".join(path.read_text(errors="replace") for path in sorted(hooks.rglob("*.py")))
    has_dashboard = any("socketio" in path.name or path.name == "dashboard" for path in package.rglob("*"))
    if isinstance(script, str):  # the entry point
        found = entry_point(package)
        if found is None:
            raise LookupError(f"the registered command {target.command!r} names no entry point of this install")
        entry_module, function = found
        command = [target.python, "-c", f"import sys; from {entry_module} import {function}; sys.exit({function}())"]
        launch = Launch(command, {}, reply_contract(handler_text), module=entry_module, function=function)
        return HookRun(
            launch,
            f"the {ENTRY_POINT} entry point ({entry_module}:{function})",
            code.encode(),
            hard_codes_port(code),
            has_dashboard,
            notes,
        )
    wrapper = script.read_text(errors="replace")
    environment = exported(wrapper)
    reply = reply_contract(wrapper, handler_text)
    arguments = invocation(wrapper)
    if arguments is None:  # a shell hook that does the work itself (5.x's fast hook)
        launch = Launch(["bash", str(script)], environment, reply)
        return HookRun(
            launch,
            f"bash {script.name} (no Python: the script posts the event itself)",
            wrapper.encode(),
            hard_codes_port(wrapper),
            has_dashboard,
            notes,
        )
    arguments = [word.replace("$SCRIPT_DIR/hook_handler.py", str(handler)) for word in arguments]
    module = arguments[arguments.index("-m") + 1] if "-m" in arguments[:-1] else None
    launch = Launch(
        [target.python, *arguments], environment, reply, module=module, handler=None if module else str(handler)
    )
    shown = " ".join(["python", *(Path(word).name if word == str(handler) else word for word in arguments)])
    return HookRun(
        launch,
        f"{shown} (as {script.name} runs it)",
        (code + wrapper).encode(),
        hard_codes_port(code + wrapper),
        has_dashboard,
        notes,
    )


def _script(target: Target, package: Path, hooks: Path) -> Path | str | None:
    """The wrapper script that runs the hook, ENTRY_POINT, or None (no wrapper: run the file by path)."""
    if target.command:
        first = shlex.split(target.command)[0] if target.command.strip() else ""
        if Path(first).name == ENTRY_POINT:
            return ENTRY_POINT
        if first.endswith(".sh") and Path(first).is_file():
            return Path(first)
    installer = hooks / INSTALLER
    if installer.is_file():
        registered = registered_script(installer.read_text(errors="replace"), package / "scripts")
        if registered is not None:
            return registered
    if (hooks / WRAPPER).is_file():
        return hooks / WRAPPER
    return None
