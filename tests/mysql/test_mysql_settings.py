"""`[backends.mysql]` parsing and the plugin's registration (no server needed)."""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from ifriend import App, Settings, load_settings
from ifriend.errors import ConfigError, PluginError
from ifriend.sessions import SessionService
from ifriend_mysql import MySQLSettings, MySQLStore

SECRET = "pa:ss@w/rd%"
QUOTED = quote(SECRET, safe="")


def test_url_gives_every_part() -> None:
    target = MySQLSettings(url="mysql+asyncmy://bot:p%40ss@db.internal:3307/chat").target()
    assert (target.host, target.port, target.user, target.password, target.database) == (
        "db.internal",
        3307,
        "bot",
        "p@ss",
        "chat",
    )
    assert "p@ss" not in repr(target) and target.describe() == "bot@db.internal:3307/chat"


def test_discrete_fields_fill_in_what_the_url_leaves_out() -> None:
    target = MySQLSettings(url="mysql://bot@db/chat", password=SECRET, port=3306).target()
    assert target.password == SECRET and target.port == 3306 and target.host == "db"


def test_discrete_fields_alone_default_host_and_port() -> None:
    target = MySQLSettings(database="chat", user="bot").target()
    assert (target.host, target.port) == ("127.0.0.1", 3306)
    socket = MySQLSettings(database="chat", user="bot", unix_socket="/cloudsql/x").target()
    assert socket.unix_socket == "/cloudsql/x" and socket.connect_kwargs()["unix_socket"]


def test_url_with_a_unix_socket_query() -> None:
    target = MySQLSettings(url="mysql://bot:pw@/chat?unix_socket=/cloudsql/p:r:i").target()
    assert target.unix_socket == "/cloudsql/p:r:i"
    assert target.describe() == "bot@unix:/cloudsql/p:r:i/chat"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"url": "mysql://bot:pw@db:3306/chat", "host": "other"}, "url and host disagree"),
        ({"url": "mysql://bot:pw@db:3306/chat", "database": "x"}, "url and database disagree"),
        (
            {"url": f"mysql://bot:{QUOTED}@db/chat", "password": "other"},
            "url and password disagree",
        ),
        ({"url": "postgres://bot@db/chat"}, "scheme"),
        ({"url": "mysql://bot@db"}, "no database"),
        ({"host": "db", "database": "chat"}, "no user"),
        ({"url": "mysql://bot@db/chat?ssl=1"}, "unsupported query"),
        ({"url": "mysql://bot@db/chat", "pool_min": 5, "pool_max": 2}, "pool_min"),
    ],
)
def test_bad_or_inconsistent_settings_are_refused(options: dict, expected: str) -> None:
    with pytest.raises(ValueError, match=expected) as info:
        MySQLSettings(**options)
    assert SECRET not in str(info.value)


def test_same_values_in_url_and_fields_are_fine() -> None:
    settings = MySQLSettings(url="mysql://bot:pw@DB:3306/chat", host="db", port=3306, user="bot")
    assert settings.target().host == "db"


@pytest.mark.parametrize("prefix", ["bad-prefix", "x" * 33, "a`b", "sp ace"])
def test_table_prefix_must_be_a_plain_identifier(prefix: str) -> None:
    with pytest.raises(ValueError):
        MySQLSettings(url="mysql://bot@db/chat", table_prefix=prefix)


def _app(tmp_path: Path, toml: str, env: dict[str, str] | None = None) -> App:
    path = tmp_path / "ifriend.toml"
    path.write_text(toml)
    return App(load_settings(path, env=env or {}))


def test_the_plugin_registers_mysql_and_builds_a_store_without_io(tmp_path: Path) -> None:
    app = _app(
        tmp_path,
        '[session]\nbackend = "cloudsql"\n',
        env={
            "CLOUDSQL_HOST": "db.internal",
            "CLOUDSQL_PORT": "3307",
            "CLOUDSQL_DATABASE": "chat",
            "CLOUDSQL_USER": "bot",
            "CLOUDSQL_PASSWORD": SECRET,
        },
    )
    service = app.session_service
    assert isinstance(service, SessionService) and isinstance(service.store, MySQLStore)
    assert service.store.target.describe() == "bot@db.internal:3307/chat"
    assert service.store.target.password == SECRET
    assert service.store._pool is None  # nothing connected yet


def test_a_bad_option_is_a_config_error_naming_the_key_without_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _app(
            tmp_path,
            '[session]\nbackend = "mysql"\n[backends.mysql]\n'
            f'url = "mysql://bot:{QUOTED}@db/chat"\n'
            "pool_size = 3\n",
        )
    assert "backends.mysql.pool_size" in str(info.value)
    assert SECRET not in str(info.value) and QUOTED not in str(info.value)
    with pytest.raises(ConfigError) as info:
        _app(tmp_path, '[session]\nbackend = "mysql"\n[backends.mysql]\ntimeout_seconds = 0\n')
    assert "backends.mysql" in str(info.value)


def test_a_missing_asyncmy_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "asyncmy", None)  # what an absent package looks like
    with pytest.raises(PluginError, match=r"pip install 'ifriend\[mysql\]'"):
        App(
            Settings.model_validate(
                {
                    "session": {"backend": "mysql"},
                    "backends": {"mysql": {"url": "mysql://bot@db/chat"}},
                }
            )
        )


def test_the_core_and_the_plugin_do_not_import_asyncmy_at_import_time() -> None:
    import subprocess

    code = "import ifriend, ifriend_mysql, sys; print('asyncmy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
