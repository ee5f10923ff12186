"""Clumsy settings get clear answers (issue 12's configuration rows): secrets masked wherever
printed and never mangling other text, environment values parsed by the setting's type,
errors naming the variable or key to fix, `--config` after any subcommand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ifriend.config import load_settings, mask_text, mask_url, mask_value, redact, secret_values
from ifriend.errors import ConfigError

from .test_cli import clean_environment, invoke, write_config  # noqa: F401 (an autouse fixture)

PASSWORD = "Pw-s3cret-9"


# --- masking ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("rediss//:PW@host/0", "rediss//:***@host/0"),  # scheme typo
        ("redis:/:PW@host/0", "redis:/:***@host/0"),
        ("redis://:PW@host:99999/0", "redis://:***@host:99999/0"),  # a port urlsplit refuses
        ("redis://:PW@host:abc/0", "redis://:***@host:abc/0"),
        ("mysql://bot:p@ss:w@host/db", "mysql://bot:***@host/db"),  # unquoted @ and :
        ("bot:PW@db.internal:3306/x", "bot:***@db.internal:3306/x"),  # no scheme at all
        ("redis://ada@host/0", "redis://ada@host/0"),  # a user, no password
        ("ada@example.com", "ada@example.com"),
        ("https://example.com/a@b", "https://example.com/a@b"),
    ],
)
def test_every_url_shaped_value_has_its_password_masked(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert mask_value("url", url) == masked
    assert mask_text(f"cannot use {url!r} here") == f"cannot use {masked!r} here"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("password", "x"),
        ("pasword", "x"),  # misspelt
        ("passwd", "x"),
        ("db_pwd", "x"),
        ("signing_secret", "x"),
        ("bot_token", "x"),
        ("api_key", "x"),
        ("apikey", "x"),
        ("credentials", "x"),
        ("slack_bot", "xoxb-123-456"),  # an unknown key, but a Slack token's value
        ("app", "xapp-1-A0"),
    ],
)
def test_values_that_look_secret_are_masked(key: str, value: str) -> None:
    assert mask_value(key, value) == "***"


@pytest.mark.parametrize(("key", "value"), [("key_prefix", "ifriend"), ("author", "ada"), ("monkey", "x")])
def test_ordinary_values_are_shown(key: str, value: str) -> None:
    assert mask_value(key, value) == value


def test_mistyped_secret_keys_are_masked_by_ifriend_config(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        f'[backends.mysql]\npasword = "{PASSWORD}"\n'
        '[channels.slack]\nenabled = false\nslack_bot = "xoxb-typo-token-1234"\n',
    )
    for args in (["config"], ["config", "--json"]):
        result = invoke(["--config", str(config), *args])
        assert result.exit_code == 0, result.output
        assert PASSWORD not in result.output
        assert "xoxb-typo-token-1234" not in result.output
    data = json.loads(invoke(["--config", str(config), "config", "--json"]).stdout)
    assert data["settings"]["backends"]["mysql"]["pasword"] == "***"
    assert data["settings"]["channels"]["slack"]["slack_bot"] == "***"


def test_a_scheme_typo_never_prints_the_password(tmp_path: Path) -> None:
    config = write_config(tmp_path, f'[session]\nbackend = "redis"\n[backends.redis]\nurl = "rediss//:{PASSWORD}@host/0"\n')
    result = invoke(["--config", str(config), "doctor"])
    assert result.exit_code == 2
    assert "backends.redis.url" in result.stderr
    assert "rediss//:***@host/0" in result.stderr
    assert PASSWORD not in result.output


def test_a_short_secret_does_not_mangle_other_text(tmp_path: Path) -> None:
    settings = load_settings(
        write_config(tmp_path, '[channels.slack]\nenabled = false\nsigning_secret = "s"\nbot_token = "xoxb-long-token-77"\n'),
        env={},
    )
    secrets = secret_values(settings)
    text = "sessions: 3 (s) token xoxb-long-token-77; secret = s"
    assert redact(text, secrets) == "sessions: 3 (***) token ***; secret = ***"


def test_a_password_quoted_alone_is_masked(tmp_path: Path) -> None:
    settings = load_settings(
        write_config(tmp_path, f'[backends.mysql]\nurl = "mysql://bot:{PASSWORD}@db/x"\n'), env={}
    )
    assert redact(f"auth failed for {PASSWORD!r}", secret_values(settings)) == "auth failed for '***'"


# --- URLs a parser refuses -----------------------------------------------------------------------


@pytest.mark.parametrize("port", ["99999", "abc"])
@pytest.mark.parametrize("scheme", ["mysql", "redis"])
def test_a_url_with_a_bad_port_is_a_config_error_naming_the_key(tmp_path: Path, scheme: str, port: str) -> None:
    url = f"{scheme}://bot:{PASSWORD}@db:{port}/0"
    config = write_config(tmp_path, f'[session]\nbackend = "{scheme}"\n[backends.{scheme}]\nurl = "{url}"\n')
    shown = invoke(["--config", str(config), "config"])
    assert shown.exit_code == 0, shown.output
    assert f"{scheme}://bot:***@db:{port}/0" in shown.stdout

    result = invoke(["--config", str(config), "doctor"])
    assert result.exit_code == 2, result.output
    assert f"backends.{scheme}.url" in result.stderr
    assert "port is not a number from 1 to 65535" in result.stderr
    assert "Traceback" not in result.output and PASSWORD not in result.output


# --- the environment ----------------------------------------------------------------------------


def test_booleans_numbers_and_lists_parse_from_the_environment(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[channels.console]\n[channels.slack]\nmode = "http"\n')
    env = {
        "IFRIEND__CHANNELS__SLACK__ENABLED": "false",
        "IFRIEND__CHANNELS__CONSOLE__ENABLED": "TRUE",
        "IFRIEND__PLUGINS__BLOCK": "slack",
        "IFRIEND__SESSION__MAX_ID_LENGTH": "64",
        "IFRIEND__TELEMETRY__SAMPLE_RATIO": "0.25",
        "IFRIEND__TELEMETRY__CAPTURE_CONTENT": "yes",
    }
    settings = load_settings(config, env=env)
    assert settings.channels["slack"]["enabled"] is False
    assert settings.channels["console"]["enabled"] is True
    assert settings.plugins.block == ["slack"]
    assert settings.session.max_id_length == 64
    assert settings.telemetry.sample_ratio == 0.25
    assert settings.telemetry.capture_content is True
    assert settings.origin("plugins", "block") == "env:IFRIEND__PLUGINS__BLOCK"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("slack, console", ["slack", "console"]), ('["slack", "console"]', ["slack", "console"]), ("", [])],
)
def test_a_list_from_the_environment_is_comma_separated_or_a_toml_array(text: str, expected: list[str]) -> None:
    assert load_settings(None, env={"IFRIEND__PLUGINS__BLOCK": text}).plugins.block == expected


def test_a_plugin_table_reads_lists_and_booleans_from_the_environment(tmp_path: Path) -> None:
    from ifriend_slack.settings import SlackSettings

    from ifriend.config import parse_section

    config = write_config(tmp_path, '[channels.slack]\nbot_token = "xoxb-1"\napp_token = "xapp-1"\n')
    env = {
        "IFRIEND__CHANNELS__SLACK__STREAMING": "false",
        "IFRIEND__CHANNELS__SLACK__ALLOWED_FILE_TYPES": "text/plain, image/*",
        "IFRIEND__CHANNELS__SLACK__LOADING_MESSAGES": '["Thinking...", "Still thinking..."]',
        "IFRIEND__CHANNELS__SLACK__MAX_FILE_BYTES": "1024",
    }
    settings = load_settings(config, env=env)
    parsed = parse_section(SlackSettings, settings.channels["slack"], key="channels.slack", settings=settings)
    assert parsed.streaming is False
    assert parsed.allowed_file_types == ["text/plain", "image/*"]
    assert parsed.loading_messages == ["Thinking...", "Still thinking..."]
    assert parsed.max_file_bytes == 1024


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("IFRIEND__SESSIONS__BACKEND", "redis", "sessions"),  # a typo in the section
        ("IFRIEND__SESSION__BAKEND", "redis", "session.bakend"),
        ("IFRIEND__SESSION__MAX_ID_LENGTH", "lots", "session.max_id_length"),
        ("IFRIEND__PLUGINS__BLOCK", '["slack"', "plugins.block"),
    ],
)
def test_an_error_from_the_environment_names_the_variable(
    tmp_path: Path, variable: str, value: str, key: str
) -> None:
    config = write_config(tmp_path, '[session]\nbackend = "memory"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env={variable: value})
    assert caught.value.source == f"env:{variable}"
    assert caught.value.key == key
    assert str(config) not in str(caught.value)


def test_a_channel_enabled_flag_that_is_not_a_boolean_names_the_variable(tmp_path: Path) -> None:
    from ifriend import App

    config = write_config(tmp_path, "[channels.console]\n")
    settings = load_settings(config, env={"IFRIEND__CHANNELS__CONSOLE__ENABLED": "maybe"})
    with pytest.raises(ConfigError, match="env:IFRIEND__CHANNELS__CONSOLE__ENABLED"):
        App(settings).enabled_channels()


# --- the command line ---------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["doctor", "--config", "{c}"], ["doctor", "--config={c}", "--timeout", "3"], ["--config", "{c}", "doctor"]])
def test_config_is_accepted_before_or_after_the_subcommand(tmp_path: Path, args: list[str]) -> None:
    config = write_config(tmp_path, '[app]\nname = "placed-anywhere"\n')
    result = invoke([a.format(c=config) for a in args])
    assert result.exit_code == 0, result.output
    assert "all checks passed" in result.stdout
    shown = invoke(["config", "--json", "--config", str(config)])
    assert json.loads(shown.stdout)["settings"]["app"]["name"] == "placed-anywhere"
