"""The YAML config: limits, pool size, the default fix selection and the monitor's settings, checked key by key.

The schema is the one claude-mpm's own ``scripts/fix_memory_leaks.py`` writes at this very path
(``memory_monitoring.*``, ``socket_io.connection_pool.*``): a user who ran that script, and tuned it,
gets the values honoured instead of an error. The keys fix-memory-leaks 0.2.0 and earlier wrote
(``limits.*``, ``connection_pool.*``, ``monitor.*``) are still read. Errors name the key and its line,
like a compiler would, and an unknown key gets the nearest known one as a hint. yaml is imported
only here, and only when a config file exists, so ``--help`` and a config-less run never pay for it.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, fields, replace
from enum import Enum
from pathlib import Path

from codemods.settings import Settings

CONFIG_RELATIVE = Path(".claude-mpm") / "memory_config.yaml"
# What the script writes instead when it runs without PyYAML (JSON is YAML, so it reads the same).
CONFIG_JSON_RELATIVE = CONFIG_RELATIVE.with_suffix(".json")
FIXES_KEY = "fixes"


class Kind(Enum):
    """What a key's value must be."""

    COUNT = "a whole number"
    SECONDS = "a number of seconds"
    SWITCH = "true or false"


@dataclass(frozen=True)
class Key:
    kind: Kind
    target: str | None  # the Settings or MonitorSettings field it sets; None: accepted, of no use here


# The schema (claude-mpm's script's): dotted key -> what it holds. ``init`` writes it; the README documents it.
SCHEMA = {
    "memory_monitoring.max_delegation_tracking": Key(Kind.COUNT, "max_delegation_tracking"),
    "memory_monitoring.max_prompt_tracking": Key(Kind.COUNT, "max_prompt_tracking"),
    "memory_monitoring.max_cache_age_seconds": Key(Kind.COUNT, "max_cache_age_seconds"),
    "memory_monitoring.cleanup_interval_events": Key(Kind.COUNT, "cleanup_interval_events"),
    "memory_monitoring.alert_threshold_mb": Key(Kind.COUNT, "alert_threshold_mb"),
    "memory_monitoring.interval_seconds": Key(Kind.SECONDS, "interval_seconds"),
    "memory_monitoring.enabled": Key(Kind.SWITCH, None),
    "memory_monitoring.auto_cleanup": Key(Kind.SWITCH, None),
    "socket_io.connection_pool.max_connections": Key(Kind.COUNT, "max_connections"),
    "socket_io.connection_pool.enabled": Key(Kind.SWITCH, None),
    "socket_io.connection_pool.cleanup_interval_seconds": Key(Kind.SECONDS, None),
    "socket_io.connection_pool.reconnection": Key(Kind.SWITCH, None),
}
# What fix-memory-leaks 0.2.0 and earlier wrote (``init``): still read, each the same as its SCHEMA twin.
EARLIER_SCHEMA = {
    "limits.max_delegation_tracking": SCHEMA["memory_monitoring.max_delegation_tracking"],
    "limits.max_prompt_tracking": SCHEMA["memory_monitoring.max_prompt_tracking"],
    "limits.max_cache_age_seconds": SCHEMA["memory_monitoring.max_cache_age_seconds"],
    "limits.cleanup_interval_events": SCHEMA["memory_monitoring.cleanup_interval_events"],
    "connection_pool.max_connections": SCHEMA["socket_io.connection_pool.max_connections"],
    "monitor.warn_rss_mb": SCHEMA["memory_monitoring.alert_threshold_mb"],
}
KNOWN_KEYS = {**SCHEMA, **EARLIER_SCHEMA}
# Every mapping that holds keys ("socket_io", "socket_io.connection_pool", ...), in the order of the keys above.
SECTIONS = tuple(
    dict.fromkeys(key.rsplit(".", depth)[0] for key in KNOWN_KEYS for depth in range(key.count("."), 0, -1))
)


@dataclass(frozen=True)
class MonitorSettings:
    """What ``fix-memory-leaks monitor`` does; not written into any handler."""

    alert_threshold_mb: int = 500  # RSS, in MB, above which a process is flagged
    interval_seconds: float = 2.0  # between two readings of the live view


class ConfigError(Exception):
    """The config file is unreadable or holds a wrong key, type or value."""


@dataclass(frozen=True)
class Config:
    settings: Settings
    fixes: tuple[str, ...] | None
    source: str  # the file used, or "built-in defaults"
    monitor: MonitorSettings = MonitorSettings()


DEFAULTS = Config(Settings(), None, "built-in defaults")


def find_config(start: Path) -> Path | None:
    """The nearest ``.claude-mpm/memory_config.yaml`` (or the script's ``.json`` fallback) from ``start`` upward."""
    for folder in (start, *start.parents):
        for relative in (CONFIG_RELATIVE, CONFIG_JSON_RELATIVE):
            candidate = folder / relative
            if candidate.is_file():
                return candidate
    return None


def resolve_config(explicit: str | None, cwd: Path | None = None) -> Config:
    """``--config FILE`` if given, else the nearest project config, else the defaults."""
    if explicit is not None:
        return load_config(Path(explicit))
    found = find_config((cwd or Path(os.getcwd())).resolve())
    return load_config(found) if found else DEFAULTS


def load_config(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the config: {getattr(error, 'strerror', None) or error}") from None
    return parse_config(text, str(path))


def parse_config(text: str, source: str) -> Config:
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{source}{where}: not valid YAML: {getattr(error, 'problem', error)}") from None
    if root is None:
        return Config(Settings(), None, source)
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{source}:{_line(root)}: the config must be a mapping of keys")
    reader = _Reader(source)
    reader.read_mapping(root, "")
    values = reader.values
    return Config(_with_values(Settings(), values), reader.fixes, source, _with_values(MonitorSettings(), values))


class _Reader:
    """Walks the YAML tree once, checking each key and value, collecting the values by the field they set."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.values: dict[str, int | float] = {}
        self.fixes: tuple[str, ...] | None = None
        self._set_by: dict[str, tuple[str, int]] = {}  # field (or unused key) -> (key, line) that set it

    def error(self, node, message: str) -> ConfigError:
        return ConfigError(f"{self.source}:{_line(node)}: {message}")

    def read_mapping(self, mapping, prefix: str) -> None:
        import yaml

        for key_node, value_node in mapping.value:
            name = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
            dotted = f"{prefix}{name}"
            if dotted == FIXES_KEY:
                self.claim(FIXES_KEY, dotted, key_node)
                self.fixes = _fix_list(value_node, self.source)
            elif dotted in SECTIONS:
                if not isinstance(value_node, yaml.MappingNode):
                    raise self.error(key_node, f"'{dotted}' must be a mapping")
                self.read_mapping(value_node, f"{dotted}.")
            elif dotted in KNOWN_KEYS:
                key = KNOWN_KEYS[dotted]
                self.claim(key.target or dotted, dotted, key_node)
                value = _value(value_node, key.kind, dotted, self.source)
                if key.target is not None:
                    self.values[key.target] = value
            else:
                raise self.error(key_node, f"unknown key '{dotted}'{_hint(dotted)}")

    def claim(self, what: str, dotted: str, node) -> None:
        """A value may be given once: the two schemas name some values twice, and YAML allows repeated keys."""
        if what in self._set_by:
            earlier, line = self._set_by[what]
            same = "is given again" if earlier == dotted else f"sets what '{earlier}' sets"
            raise self.error(node, f"'{dotted}' {same} (line {line}); keep one")
        self._set_by[what] = (dotted, _line(node))


def _line(node) -> int:
    return int(node.start_mark.line) + 1


def _hint(dotted: str) -> str:
    """`` (did you mean 'KEY'?)``: the same name in another section, else the closest name in this section, else
    the closest name anywhere; without one, the keys this section knows."""
    section = dotted.rsplit(".", 1)[0] + "." if "." in dotted else ""
    leaf = dotted[len(section) :]
    known = [key for key in (*SCHEMA, *EARLIER_SCHEMA, *SECTIONS, FIXES_KEY) if not dotted.startswith(f"{key}.")]
    siblings = [key for key in known if key.startswith(section) and "." not in key[len(section) :]]
    for candidates in ([key for key in SCHEMA if key.endswith(f".{leaf}")], siblings, known):
        by_leaf = {key.rsplit(".", 1)[-1]: key for key in reversed(candidates)}
        nearest = difflib.get_close_matches(leaf, list(by_leaf), n=1, cutoff=0.75)
        if nearest:
            return f" (did you mean '{by_leaf[nearest[0]]}'?)"
    return f" (known here: {', '.join(siblings)})"


def _with_values(defaults, values):
    """``defaults`` with the values that name one of its fields."""
    return replace(defaults, **{f.name: values[f.name] for f in fields(defaults) if f.name in values})


def _value(node, kind: Kind, key: str, source: str) -> int | float:
    """The checked value of ``node``: a positive whole number, a positive number, or true/false (checked, unused)."""
    import yaml

    line = _line(node)
    tag = getattr(node, "tag", "")
    shown = getattr(node, "value", "?")
    if kind is Kind.SWITCH:
        if tag != "tag:yaml.org,2002:bool":
            raise ConfigError(f"{source}:{line}: '{key}' must be true or false, not {shown!r}")
        return 0
    allowed = ("tag:yaml.org,2002:int",) if kind is Kind.COUNT else ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    if tag not in allowed:
        raise ConfigError(f"{source}:{line}: '{key}' must be {kind.value}, not {shown!r}")
    value = yaml.SafeLoader("").construct_object(node)
    if not 0 < value < float("inf"):
        raise ConfigError(f"{source}:{line}: '{key}' must be positive, not {value}")
    return value  # type: ignore[no-any-return]


def _fix_list(node, source: str) -> tuple[str, ...]:
    import yaml

    from codemods.fixes.registry import FIX_NAMES

    if not isinstance(node, yaml.SequenceNode):
        raise ConfigError(f"{source}:{_line(node)}: 'fixes' must be a list of fix names")
    names = []
    for item in node.value:
        if not isinstance(item, yaml.ScalarNode) or item.value not in FIX_NAMES:
            shown = getattr(item, "value", "?")
            raise ConfigError(
                f"{source}:{_line(item)}: unknown fix {shown!r} in 'fixes' (the fixes are: {', '.join(FIX_NAMES)})"
            )
        names.append(item.value)
    return tuple(names)
