"""``fix-memory-leaks init`` and the config schema: claude-mpm's script's (what init writes), and the earlier one."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import pytest

from codemods.fixes.registry import FIX_NAMES
from codemods.settings import Settings
from fixer import monitor as monitor_module
from fixer.cli import main
from fixer.patch import init as init_module
from fixer.patch.config import (
    CONFIG_RELATIVE,
    EARLIER_SCHEMA,
    SCHEMA,
    ConfigError,
    MonitorSettings,
    load_config,
    parse_config,
    resolve_config,
)
from tests.damage import SCRIPT_CONFIG, checkout, run_script

FIXTURE_ORIGINAL = (
    Path(__file__).resolve().parent.parent
    / "fixtures"
    / "script-damaged-3.4"
    / "claude_mpm"
    / "hooks"
    / "claude_hooks"
    / "hook_handler.py.backup"
)


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def script_config(tmp_path) -> Path:
    """The config claude-mpm's real fix_memory_leaks.py writes, in the checkout it ran in."""
    checkout(tmp_path, FIXTURE_ORIGINAL.read_bytes())
    return run_script(tmp_path).config


# ---------------------------------------------------------------- init


def test_init_writes_a_config_that_loads_to_the_defaults(capsys, tmp_path):
    code, out, err = run(capsys, "init", str(tmp_path))
    written = tmp_path / CONFIG_RELATIVE
    config = load_config(written)
    assert code == 0 and out == ""
    assert str(written) in err
    assert config.settings == Settings()
    assert config.monitor == MonitorSettings()
    assert config.fixes is None  # no list: a fix added in a later version is used too


def test_init_writes_the_scripts_schema_only():
    """Every value init writes is under the schema claude-mpm's script writes: one schema for the file."""
    import yaml

    def dotted(mapping, prefix=""):
        for key, value in mapping.items():
            yield from dotted(value, f"{prefix}{key}.") if isinstance(value, dict) else [f"{prefix}{key}"]

    written = set(dotted(yaml.safe_load(init_module.default_config_text())))
    assert written == {key for key, spec in SCHEMA.items() if spec.target is not None}
    assert not written & set(EARLIER_SCHEMA)


def test_init_defaults_to_the_current_folder_and_the_config_is_then_found(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "init")[0] == 0
    (tmp_path / "deeper" / "still").mkdir(parents=True)
    found = resolve_config(None, cwd=tmp_path / "deeper" / "still")
    assert found.source == str((tmp_path / CONFIG_RELATIVE).resolve())


def test_every_key_is_written_with_a_comment_above_it():
    lines = init_module.default_config_text().splitlines()
    for key, spec in SCHEMA.items():
        if spec.target is None:
            assert key in init_module.default_config_text()  # named as accepted, with no effect
            continue
        *sections, name = key.split(".")
        for depth, section in enumerate(sections):
            assert f"{'  ' * depth}{section}:" in lines
        index = lines.index(f"{'  ' * len(sections)}{name}: " + f"{_defaults()[spec.target]:g}")
        assert lines[index - 1].strip().startswith("# ") and len(lines[index - 1].strip()) > 10


def _defaults() -> dict:
    return {field.name: field.default for kind in (Settings, MonitorSettings) for field in fields(kind)}


def test_the_values_come_from_the_settings_classes(monkeypatch):
    @dataclass(frozen=True)
    class OtherSettings(Settings):
        max_connections: int = 7
        max_prompt_tracking: int = 11

    @dataclass(frozen=True)
    class OtherMonitor(MonitorSettings):
        interval_seconds: float = 0.5

    monkeypatch.setattr(init_module, "Settings", OtherSettings)
    monkeypatch.setattr(init_module, "MonitorSettings", OtherMonitor)
    config = parse_config(init_module.default_config_text(), "test")
    assert config.settings.max_connections == 7 and config.settings.max_prompt_tracking == 11
    assert config.settings.max_delegation_tracking == Settings().max_delegation_tracking
    assert config.monitor.interval_seconds == 0.5


def test_the_commented_fix_list_names_every_fix_and_works_when_uncommented():
    text = init_module.default_config_text()
    uncommented = text.replace("# fixes: [", "fixes: [")
    assert uncommented != text
    assert parse_config(uncommented, "test").fixes == FIX_NAMES


def test_init_never_overwrites(capsys, tmp_path):
    target = tmp_path / CONFIG_RELATIVE
    target.parent.mkdir()
    target.write_text("limits:\n  max_prompt_tracking: 42\n")
    code, out, err = run(capsys, "init", str(tmp_path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "already exists" in err and str(target) in err
    assert target.read_text() == "limits:\n  max_prompt_tracking: 42\n"


def test_init_into_a_missing_folder_is_a_one_line_error(capsys, tmp_path):
    code, _, err = run(capsys, "init", str(tmp_path / "nowhere"))
    assert code == 2 and err.count("\n") == 1 and "no such folder" in err
    assert not (tmp_path / "nowhere").exists()


def test_init_quiet_prints_nothing(capsys, tmp_path):
    assert run(capsys, "init", str(tmp_path), "--quiet") == (0, "", "")
    assert (tmp_path / CONFIG_RELATIVE).is_file()


# ---------------------------------------------------------------- the file claude-mpm's script writes


def test_the_scripts_own_config_is_read_and_holds_the_defaults(script_config):
    config = load_config(script_config)
    assert config.settings == Settings()
    assert config.monitor.alert_threshold_mb == 500 and config.monitor.interval_seconds == 60
    assert config.fixes is None


@pytest.mark.parametrize(
    ("key", "field"),
    [
        ("max_delegation_tracking", "max_delegation_tracking"),
        ("max_prompt_tracking", "max_prompt_tracking"),
        ("max_cache_age_seconds", "max_cache_age_seconds"),
        ("cleanup_interval_events", "cleanup_interval_events"),
        ("max_connections", "max_connections"),
    ],
)
def test_a_value_tuned_in_the_scripts_config_is_honoured(script_config, key, field):
    text = script_config.read_text()
    default = getattr(Settings(), field)
    tuned = text.replace(f"{key}: {default}\n", f"{key}: {default + 7}\n")
    assert tuned.count(f"{key}: {default + 7}\n") == 1
    assert getattr(parse_config(tuned, "test").settings, field) == default + 7


def test_the_scripts_json_config_is_found_when_it_ran_without_pyyaml(tmp_path):
    """Without PyYAML the script writes .claude-mpm/memory_config.json; it is found and read the same way."""
    checkout(tmp_path, FIXTURE_ORIGINAL.read_bytes())
    run_script(tmp_path, "-S")  # no site-packages: no yaml
    assert not (tmp_path / SCRIPT_CONFIG).exists()
    found = resolve_config(None, cwd=tmp_path)
    assert found.source == str(tmp_path / ".claude-mpm" / "memory_config.json")
    assert found.settings == Settings() and found.monitor.interval_seconds == 60


def test_the_scripts_config_no_longer_stops_check(script_config, capsys, monkeypatch):
    """The reported failure: `memory_config.yaml:1: unknown key 'memory_monitoring'`, exit 2, for every user of it."""
    monkeypatch.chdir(script_config.parents[1])
    handler = script_config.parents[1] / "src"
    assert main(["check", str(handler)]) == 2  # damaged, as it should be, not a config error
    err = capsys.readouterr().err
    assert "damaged by claude-mpm's fix_memory_leaks.py" in err and f"config: {script_config}" in err


def test_monitor_takes_its_interval_and_threshold_from_the_scripts_config(script_config, monkeypatch):
    calls = []
    monkeypatch.setattr(monitor_module, "watch", lambda *args: calls.append(("watch", *args)))
    monkeypatch.setattr(monitor_module, "print_once", lambda *args: calls.append(("once", *args)) or 0)
    config = str(script_config)
    text = script_config.read_text().replace("alert_threshold_mb: 500", "alert_threshold_mb: 750")
    script_config.write_text(text)

    assert main(["monitor", "--config", config]) == 0
    assert main(["monitor", "--config", config, "--interval", "5", "--threshold-mb", "300"]) == 0
    assert main(["monitor", "--config", config, "--once"]) == 0

    assert calls == [
        ("watch", 750, 60, False, config),
        ("watch", 300, 5.0, False, config),
        ("once", 750, False),
    ]


# ---------------------------------------------------------------- the schema, key by key


def test_the_earlier_schema_is_still_read():
    text = (
        "limits:\n  max_delegation_tracking: 9\n  max_prompt_tracking: 8\n  max_cache_age_seconds: 7\n"
        "  cleanup_interval_events: 6\nconnection_pool:\n  max_connections: 5\nmonitor:\n  warn_rss_mb: 750\n"
    )
    config = parse_config(text, "test")
    assert config.settings == Settings(9, 8, 7, 6, 5)
    assert config.monitor.alert_threshold_mb == 750
    assert {spec.target for spec in EARLIER_SCHEMA.values()} <= set(_defaults())


def test_the_schema_sets_every_setting():
    targets = {spec.target for spec in SCHEMA.values()} - {None}
    assert targets == {field.name for field in fields(Settings)} | {field.name for field in fields(MonitorSettings)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "memory_monitoring:\n  max_delegation_trackng: 5\n",
            "test:2: unknown key 'memory_monitoring.max_delegation_trackng' "
            "(did you mean 'memory_monitoring.max_delegation_tracking'?)",
            id="misspelt",
        ),
        pytest.param(
            "memory_monitoring:\n  max_connections: 5\n",
            "test:2: unknown key 'memory_monitoring.max_connections' "
            "(did you mean 'socket_io.connection_pool.max_connections'?)",
            id="wrong-section",
        ),
        pytest.param(
            "memory_monitor:\n  enabled: true\n",
            "test:1: unknown key 'memory_monitor' (did you mean 'memory_monitoring'?)",
            id="misspelt-section",
        ),
        pytest.param(
            "monitor:\n  warn_rss: 500\n",
            "test:2: unknown key 'monitor.warn_rss' (did you mean 'monitor.warn_rss_mb'?)",
            id="earlier-schema",
        ),
        pytest.param(
            "socket_io:\n  connection_pool:\n    zz: 1\n",
            "test:3: unknown key 'socket_io.connection_pool.zz' (known here: "
            "socket_io.connection_pool.max_connections, socket_io.connection_pool.enabled,",
            id="no-near-key",
        ),
        pytest.param(
            "memory_monitoring:\n  alert_threshold_mb: 0\n",
            "test:2: 'memory_monitoring.alert_threshold_mb' must be positive, not 0",
            id="zero",
        ),
        pytest.param(
            "memory_monitoring:\n  interval_seconds: -1.5\n",
            "test:2: 'memory_monitoring.interval_seconds' must be positive, not -1.5",
            id="negative-seconds",
        ),
        pytest.param(
            "memory_monitoring:\n  max_prompt_tracking: 1.5\n",
            "test:2: 'memory_monitoring.max_prompt_tracking' must be a whole number, not '1.5'",
            id="fraction",
        ),
        pytest.param(
            "socket_io:\n  connection_pool:\n    reconnection: 3\n",
            "test:3: 'socket_io.connection_pool.reconnection' must be true or false, not '3'",
            id="unused-key-checked-too",
        ),
        pytest.param("socket_io: 3\n", "test:1: 'socket_io' must be a mapping", id="section-not-mapping"),
        pytest.param(
            "memory_monitoring:\n  max_prompt_tracking: 5\nlimits:\n  max_prompt_tracking: 6\n",
            "test:4: 'limits.max_prompt_tracking' sets what 'memory_monitoring.max_prompt_tracking' sets (line 2)",
            id="both-schemas",
        ),
        pytest.param(
            "memory_monitoring:\n  enabled: true\n  enabled: false\n",
            "test:3: 'memory_monitoring.enabled' is given again (line 2)",
            id="repeated",
        ),
        pytest.param(
            "monitor:\n  warn_rss_mb: lots\n", "test:2: 'monitor.warn_rss_mb' must be a whole number", id="not-a-number"
        ),
    ],
)
def test_wrong_keys_and_values_name_the_key_and_the_line(text, expected):
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "test")
    assert str(raised.value).startswith(expected)
