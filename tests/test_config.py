"""Settings: file, interpolation, environment overrides, errors that say what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from ifriend.config import load_settings, mask_value
from ifriend.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ifriend.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_any_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert settings.session.backend == "memory"
    assert settings.memory.backend == "memory"
    assert settings.telemetry.exporter == "none"
    assert settings.source == "<defaults>"
    assert settings.origin("session", "backend") == "default"


def test_file_is_found_in_working_directory_then_ifriend_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, '[app]\nname = "here"\n')
    assert load_settings(env={}).app.name == "here"
    other = tmp_path / "other.toml"
    other.write_text('[app]\nname = "there"\n')
    assert load_settings(env={"IFRIEND_CONFIG": str(other)}).app.name == "there"
    assert load_settings(other, env={}).source == str(other)


def test_interpolation_with_defaults_and_escape(tmp_path):
    path = write(
        tmp_path,
        '[backends.redis]\nurl = "${REDIS_HOST_URL}"\nname = "${MISSING:-fallback}"\n'
        'literal = "$${NOT_A_VAR}"\n',
    )
    settings = load_settings(path, env={"REDIS_HOST_URL": "redis://h:1/0"})
    assert settings.backends["redis"] == {
        "url": "redis://h:1/0",
        "name": "fallback",
        "literal": "${NOT_A_VAR}",
    }


def test_missing_variable_names_it_and_the_key(tmp_path):
    path = write(tmp_path, '[backends.redis]\nurl = "${NOPE}"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    message = str(info.value)
    assert "NOPE" in message and "backends.redis.url" in message and str(path) in message


def test_environment_beats_file_and_records_origin(tmp_path):
    path = write(tmp_path, '[session]\nbackend = "memory"\n[backends.redis]\nurl = "redis://file"\n')
    env = {
        "SESSION_BACKEND": "cloudsql",
        "MEMORY_BACKEND": "inmemory",
        "REDIS_URL": "redis://env:6379/1",
        "REDIS_SESSION_TTL": "60",
        "CLOUDSQL_HOST": "db.internal",
        "CLOUDSQL_PASSWORD": "hunter2",
        "IFRIEND__APP__NAME": "generic",
    }
    settings = load_settings(path, env=env)
    assert settings.session.backend == "mysql"  # alias of the original bot's name
    assert settings.memory.backend == "memory"
    assert settings.backends["redis"] == {"url": "redis://env:6379/1", "session_ttl_seconds": "60"}
    assert settings.backends["mysql"]["host"] == "db.internal"
    assert settings.app.name == "generic"
    assert settings.origin("session", "backend") == "env:SESSION_BACKEND"
    assert settings.origin("backends", "redis", "url") == "env:REDIS_URL"
    assert settings.origin("app", "name") == "env:IFRIEND__APP__NAME"
    assert settings.origin("telemetry", "exporter") == "default"


def test_effective_settings_mask_secrets(tmp_path):
    path = write(tmp_path, '[backends.mysql]\nurl = "mysql://ifriend:s3cret@db:3306/x"\n')
    settings = load_settings(path, env={"CLOUDSQL_PASSWORD": "hunter2", "SLACK_X": "y"})
    rendered = str(settings.effective())
    assert "s3cret" not in rendered and "hunter2" not in rendered
    assert settings.effective()["backends"]["mysql"]["url"] == "mysql://ifriend:***@db:3306/x"


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("bot_token", "xoxb-1", "***"),
        ("signing_secret", "abc", "***"),
        ("url", "redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("url", "redis://h:6379/0", "redis://h:6379/0"),
        ("name", "plain", "plain"),
    ],
)
def test_mask_value(key, value, expected):
    assert mask_value(key, value) == expected


@pytest.mark.parametrize(
    "text, key, fragment",
    [
        ('[telemetry]\nexporter = "zipkin"\n', "telemetry.exporter", "zipkin"),
        ('[telemetry]\nsample_ratio = 2.0\n', "telemetry.sample_ratio", "2.0"),
        ('[session]\nmax_id_length = "long"\n', "session.max_id_length", "long"),
        ('[session]\nbackedn = "redis"\n', "session.backedn", "unknown setting"),
        ("[plugins]\nblock = 3\n", "plugins.block", "3"),
        ("[app.compaction]\ninterval = 0\n", "app.compaction.interval", "greater than or equal to 1"),
        ("[app.compaction]\ninterval = 2\noverlap = 2\n", "app.compaction.overlap", "smaller than interval (2)"),
        ("[app.compaction]\nprompt_limit = -5\n", "app.compaction.prompt_limit", "-5"),
        ("[app.compaction]\nevery = 3\n", "app.compaction.every", "interval, overlap"),
    ],
)
def test_bad_values_name_file_key_value_and_expectation(tmp_path, text, key, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    message = str(info.value)
    assert key in message and fragment in message and str(path) in message
    assert info.value.key == key


def test_bad_environment_value_names_the_variable(tmp_path):
    path = write(tmp_path, "")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={"IFRIEND__SESSION__MAX_EVENT_BYTES": "lots"})
    assert "env:IFRIEND__SESSION__MAX_EVENT_BYTES" in str(info.value)


def test_invalid_toml_and_missing_file(tmp_path):
    path = write(tmp_path, "[app\nname=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path, env={})
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml", env={})
