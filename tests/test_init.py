"""``fix-memory-leaks init`` and the ``monitor`` section of the config."""

from __future__ import annotations

from dataclasses import dataclass, fields

import pytest

from codemods.registry import FIX_NAMES
from codemods.settings import Settings
from fixer import init as init_module
from fixer.cli import main
from fixer.config import (
    CONFIG_RELATIVE,
    SCHEMA,
    ConfigError,
    MonitorSettings,
    load_config,
    parse_config,
    resolve_config,
)


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_init_writes_a_config_that_loads_to_the_defaults(capsys, tmp_path):
    code, out, err = run(capsys, "init", str(tmp_path))
    written = tmp_path / CONFIG_RELATIVE
    config = load_config(written)
    assert code == 0 and out == ""
    assert str(written) in err
    assert config.settings == Settings()
    assert config.monitor == MonitorSettings()
    assert config.fixes is None  # no list: a fix added in a later version is used too


def test_init_defaults_to_the_current_folder_and_the_config_is_then_found(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "init")[0] == 0
    (tmp_path / "deeper" / "still").mkdir(parents=True)
    found = resolve_config(None, cwd=tmp_path / "deeper" / "still")
    assert found.source == str((tmp_path / CONFIG_RELATIVE).resolve())


def test_every_key_is_written_with_a_comment_above_it(tmp_path):
    lines = init_module.default_config_text().splitlines()
    for section, keys in SCHEMA.items():
        assert f"{section}:" in lines
        for key in keys:
            index = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{key}:"))
            assert lines[index - 1].strip().startswith("# ") and len(lines[index - 1].strip()) > 10


def test_the_values_come_from_the_settings_classes(monkeypatch):
    @dataclass(frozen=True)
    class OtherSettings(Settings):
        max_connections: int = 7
        max_prompt_tracking: int = 11

    monkeypatch.setattr(init_module, "Settings", OtherSettings)
    config = parse_config(init_module.default_config_text(), "test")
    assert config.settings.max_connections == 7 and config.settings.max_prompt_tracking == 11
    assert config.settings.max_delegation_tracking == Settings().max_delegation_tracking


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


# ---------------------------------------------------------------- the monitor section of the schema


def test_monitor_threshold_is_read_from_the_config():
    config = parse_config("monitor:\n  warn_rss_mb: 750\nlimits:\n  max_prompt_tracking: 9\n", "test")
    assert config.monitor.warn_rss_mb == 750
    assert config.settings.max_prompt_tracking == 9
    assert {field.name for field in fields(MonitorSettings)} == set(SCHEMA["monitor"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("monitor:\n  warn_rss_mb: 0\n", "test:2: 'monitor.warn_rss_mb' must be positive, not 0"),
        ("monitor:\n  warn_rss_mb: lots\n", "test:2: 'monitor.warn_rss_mb' must be a whole number"),
        ("monitor:\n  warn_rss: 500\n", "test:2: unknown key 'monitor.warn_rss' (known: monitor.warn_rss_mb)"),
        ("monitor: 500\n", "test:1: 'monitor' must be a mapping"),
        (
            "monitors:\n  warn_rss_mb: 5\n",
            "test:1: unknown key 'monitors' (known: limits, connection_pool, monitor, fixes)",
        ),
    ],
)
def test_monitor_section_is_validated_like_the_others(text, expected):
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "test")
    assert str(raised.value).startswith(expected)
