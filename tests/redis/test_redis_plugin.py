"""The redis plugin: registration, `[backends.redis]` settings, a missing extra. No server needed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ifriend import App, Settings, load_settings
from ifriend.errors import ConfigError, PluginError
from ifriend.sessions import SessionService
from ifriend_redis import RedisSettings, RedisStore


def test_defaults():
    s = RedisSettings()
    assert s.url == "redis://127.0.0.1:6379/0"
    assert s.key_prefix == "ifriend"
    assert s.session_ttl_seconds == 3600
    assert s.memory_ttl_days == 30
    assert s.timeout_seconds == 2.0
    assert s.max_connections == 50
    assert s.state_ttl is None


def test_registered_through_the_entry_point_and_built_by_the_app():
    app = App(Settings.model_validate({"session": {"backend": "redis"}}))
    assert isinstance(app.session_service, SessionService)
    assert isinstance(app.session_service.store, RedisStore)
    assert app.session_service.backend == "redis"


def test_environment_variables_of_the_old_bot_map_here(tmp_path: Path):
    path = tmp_path / "ifriend.toml"
    path.write_text("")
    env = {
        "SESSION_BACKEND": "redis",
        "REDIS_URL": "redis://:pw@h:6380/2",
        "REDIS_SESSION_TTL": "120",
        "REDIS_MEMORY_TTL_DAYS": "7",
    }
    store = App(load_settings(path, env=env)).session_service.store
    assert store.settings.url == "redis://:pw@h:6380/2"
    assert store.settings.session_ttl_seconds == 120
    assert store.settings.memory_ttl_days == 7


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"unknown": 1}, "unknown"),
        ({"session_ttl_seconds": 0}, "session_ttl_seconds"),
        ({"key_prefix": "a{b}"}, "key_prefix"),
        ({"key_prefix": "has space"}, "key_prefix"),
        ({"url": "http://:secret@h/0"}, "url"),
    ],
)
def test_bad_settings_fail_at_start_naming_the_key(options, key):
    settings = Settings.model_validate(
        {"session": {"backend": "redis"}, "backends": {"redis": options}}
    )
    with pytest.raises(ConfigError) as info:
        App(settings)
    assert f"backends.redis.{key}" in str(info.value)
    assert "secret" not in str(info.value)


def test_missing_client_names_the_extra(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(PluginError) as info:
        App(Settings.model_validate({"session": {"backend": "redis"}}))
    assert "pip install 'ifriend[redis]'" in str(info.value)


def test_the_package_does_not_import_redis_at_module_level():
    import importlib

    for name in ("ifriend_redis", "ifriend_redis.store", "ifriend_redis.client"):
        source = importlib.util.find_spec(name).origin
        text = Path(source).read_text()
        module_level = [
            line for line in text.splitlines() if line.startswith(("import redis", "from redis"))
        ]
        assert module_level == [], name
