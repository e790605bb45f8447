"""The YAML config: limits, pool size, the default fix selection and the monitor threshold, checked key by key.

Errors name the key and its line, like a compiler would. yaml is imported only here,
and only when a config file exists, so ``--help`` and a config-less run never pay for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

from codemods.settings import Settings

CONFIG_RELATIVE = Path(".claude-mpm") / "memory_config.yaml"

# Section -> its keys; each key is also the name of the Settings or MonitorSettings field it sets.
SCHEMA = {
    "limits": ("max_delegation_tracking", "max_prompt_tracking", "max_cache_age_seconds", "cleanup_interval_events"),
    "connection_pool": ("max_connections",),
    "monitor": ("warn_rss_mb",),
}
TOP_LEVEL_KEYS = (*SCHEMA, "fixes")


@dataclass(frozen=True)
class MonitorSettings:
    """What ``fix-memory-leaks monitor`` warns about; not written into any handler."""

    warn_rss_mb: int = 500  # RSS, in MB, above which a process is flagged


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
    """The nearest ``.claude-mpm/memory_config.yaml`` from ``start`` upward."""
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_RELATIVE
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
        raise ConfigError(f"{source}:{root.start_mark.line + 1}: the config must be a mapping of keys")

    values, fixes = {}, None
    for key_node, value_node in root.value:
        key, line = key_node.value, key_node.start_mark.line + 1
        if key == "fixes":
            fixes = _fix_list(value_node, source)
        elif key in SCHEMA:
            if not isinstance(value_node, yaml.MappingNode):
                raise ConfigError(f"{source}:{line}: '{key}' must be a mapping")
            for sub_key_node, sub_value_node in value_node.value:
                dotted = f"{key}.{sub_key_node.value}"
                sub_line = sub_key_node.start_mark.line + 1
                if sub_key_node.value not in SCHEMA[key]:
                    known = ", ".join(f"{key}.{k}" for k in SCHEMA[key])
                    raise ConfigError(f"{source}:{sub_line}: unknown key '{dotted}' (known: {known})")
                values[sub_key_node.value] = _positive_int(sub_value_node, dotted, source)
        else:
            raise ConfigError(f"{source}:{line}: unknown key '{key}' (known: {', '.join(TOP_LEVEL_KEYS)})")
    return Config(_with_values(Settings(), values), fixes, source, _with_values(MonitorSettings(), values))


def _with_values(defaults, values):
    """``defaults`` with the values that name one of its fields (key names are unique across sections)."""
    return replace(defaults, **{f.name: values[f.name] for f in fields(defaults) if f.name in values})


def _positive_int(node, key: str, source: str) -> int:
    import yaml

    line = node.start_mark.line + 1
    if node.tag != "tag:yaml.org,2002:int":
        raise ConfigError(f"{source}:{line}: '{key}' must be a whole number, not {getattr(node, 'value', '?')!r}")
    value = yaml.SafeLoader.construct_yaml_int(yaml.SafeLoader(""), node)
    if value <= 0:
        raise ConfigError(f"{source}:{line}: '{key}' must be positive, not {value}")
    return value


def _fix_list(node, source: str) -> tuple[str, ...]:
    import yaml

    from codemods.registry import FIX_NAMES

    line = node.start_mark.line + 1
    if not isinstance(node, yaml.SequenceNode):
        raise ConfigError(f"{source}:{line}: 'fixes' must be a list of fix names")
    names = []
    for item in node.value:
        if not isinstance(item, yaml.ScalarNode) or item.value not in FIX_NAMES:
            shown = getattr(item, "value", "?")
            raise ConfigError(
                f"{source}:{item.start_mark.line + 1}: unknown fix {shown!r} in 'fixes' "
                f"(the fixes are: {', '.join(FIX_NAMES)})"
            )
        names.append(item.value)
    return tuple(names)
