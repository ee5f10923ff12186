"""The slack plugin: registration, settings, the missing extra, OAuth, dedupe stores."""

from __future__ import annotations

import sys
import uuid
from typing import Any

import aiohttp
import pytest

from ifriend import App, Settings
from ifriend_bench.cleanup import delete_redis_keys
from ifriend.errors import ConfigError, PluginError
from ifriend.plugins import build_plugin_manager, collect
from ifriend_slack.dedupe import MemoryState, RedisState, build_state
from ifriend_slack.events import parse_post
from ifriend_slack.server import fresh_timestamp
from ifriend_slack.testing import FakeSlack, event_body, mention, message

from .bots import APP_TOKEN, BOT_TOKEN, SECRET


def slack_app(options: dict[str, Any], **settings: Any) -> App:
    return App(Settings.model_validate({**settings, "channels": {"slack": options}}))


def test_the_slack_channel_is_registered_by_its_entry_point() -> None:
    registry = collect(build_plugin_manager(), "register_channels", "channel")
    assert registry.get("slack").plugin == "slack"


def test_socket_mode_is_the_default_and_needs_both_tokens() -> None:
    app = slack_app({"bot_token": BOT_TOKEN})
    with pytest.raises(ConfigError) as caught:
        app.build_channel("slack")
    message_ = str(caught.value)
    assert "channels.slack" in message_ and "app_token" in message_
    assert BOT_TOKEN not in message_


def test_http_mode_needs_the_signing_secret() -> None:
    with pytest.raises(ConfigError, match="signing_secret"):
        slack_app({"mode": "http", "bot_token": BOT_TOKEN}).build_channel("slack")


def test_a_bad_value_is_reported_with_its_key_and_without_secrets() -> None:
    options = {"mode": "http", "bot_token": BOT_TOKEN, "signing_secret": SECRET, "port": "eighty"}
    with pytest.raises(ConfigError) as caught:
        slack_app(options).build_channel("slack")
    assert "channels.slack.port" in str(caught.value)
    for secret in (BOT_TOKEN, SECRET):
        assert secret not in str(caught.value)


def test_tokens_come_from_the_environment_and_are_masked(tmp_path, monkeypatch) -> None:
    from ifriend.config import load_settings

    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
    path = tmp_path / "ifriend.toml"
    path.write_text('[channels.slack]\nbot_token = "${SLACK_BOT_TOKEN}"\napp_token = "${SLACK_APP_TOKEN}"\n')
    settings = load_settings(path)
    channel = App(settings).build_channel("slack")
    assert channel.settings.bot_token.get_secret_value() == BOT_TOKEN
    assert BOT_TOKEN not in repr(channel.settings) and APP_TOKEN not in repr(channel.settings)
    effective = str(settings.effective())
    assert BOT_TOKEN not in effective and APP_TOKEN not in effective


def test_a_missing_extra_names_the_install_command(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "slack_bolt", None)  # `import slack_bolt` now fails
    app = slack_app({"bot_token": BOT_TOKEN, "app_token": APP_TOKEN})
    with pytest.raises(PluginError, match=r"slack-bolt: pip install 'ifriend\[slack\]'"):
        app.build_channel("slack")


async def test_oauth_with_a_file_installation_store_builds_a_multi_workspace_app(
    tmp_path, fake_slack: FakeSlack
) -> None:
    options = {
        "mode": "http",
        "signing_secret": SECRET,
        "host": "127.0.0.1",
        "port": 0,
        "api_url": fake_slack.api_url,
        "oauth": {"client_id": "111.222", "client_secret": "oauth-secret-xyz", "directory": str(tmp_path)},
    }
    async with slack_app(options) as app:
        channel = app.build_channel("slack")
        bolt = channel.build()
        from slack_sdk.oauth.installation_store import FileInstallationStore

        assert bolt.oauth_flow is not None
        assert isinstance(bolt.installation_store, FileInstallationStore)
        assert channel.client.token is None  # each team's token comes from its installation
        await channel.start()
        try:
            install = channel.url.replace("/slack/events", "/slack/install")
            async with aiohttp.ClientSession() as http, http.get(install) as resp:
                page = await resp.text()
            assert resp.status == 200
            assert "client_id=111.222" in page and "slack.com/oauth/v2/authorize" in page
        finally:
            await channel.close()


async def test_oauth_with_a_sql_installation_store_creates_its_tables(tmp_path, fake_slack: FakeSlack) -> None:
    options = {
        "mode": "http",
        "signing_secret": SECRET,
        "host": "127.0.0.1",
        "port": 0,
        "api_url": fake_slack.api_url,
        "oauth": {
            "client_id": "111.222",
            "client_secret": "oauth-secret-xyz",
            "installation_store": "sql",
            "sql_url": f"sqlite+aiosqlite:///{tmp_path}/installations.db",
        },
    }
    async with slack_app(options) as app:
        channel = app.build_channel("slack")
        from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore

        assert isinstance(channel.build().installation_store, AsyncSQLAlchemyInstallationStore)
        await channel.start()
        await channel.close()
    import sqlite3

    with sqlite3.connect(tmp_path / "installations.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"slack_installations", "slack_bots", "slack_oauth_states"} <= tables


def test_oauth_needs_http_mode() -> None:
    options = {"app_token": APP_TOKEN, "oauth": {"client_id": "1.2", "client_secret": "s"}}
    with pytest.raises(ConfigError, match="http"):
        slack_app(options).build_channel("slack")


def test_bolts_implicit_oauth_from_the_environment_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("SLACK_CLIENT_ID", "1.2")
    monkeypatch.setenv("SLACK_CLIENT_SECRET", "s")
    channel = slack_app({"bot_token": BOT_TOKEN, "app_token": APP_TOKEN}).build_channel("slack")
    with pytest.raises(ConfigError, match="SLACK_CLIENT_ID"):
        channel.build()


@pytest.mark.parametrize(
    ("value", "fresh"),
    [("NOW", True), ("NOW-299", True), ("NOW-301", False), ("NOW+301", False), ("abc", False),
     ("", False), (None, False), ("1e3", False), ("-5", False), ("١٢٣", False)],
)
def test_request_timestamps(value: str | None, fresh: bool) -> None:
    now = 1_700_000_000
    if value is not None and value.startswith("NOW"):
        value = str(now + int(value[3:] or 0))
    assert fresh_timestamp(value, max_age=300, now=now) is fresh


def test_posts_from_events() -> None:
    post = parse_post(event_body(mention("hi <@U2>", ts="1.000001")), bot_user_id="UBOT")
    assert post is not None
    assert post.text == "hi @U2" and post.mentioned and not post.direct
    assert post.thread_session_id == "slack:T0001:C0001:1.000001"
    assert post.reply_thread_ts == "1.000001"
    reply = parse_post(event_body(message("more", thread_ts="1.000001")), bot_user_id="UBOT")
    assert reply is not None and reply.thread_session_id == "slack:T0001:C0001:1.000001"
    assert not reply.mentioned
    dm = parse_post(event_body(message("yo", channel="D1", channel_type="im")), bot_user_id="UBOT")
    assert dm is not None and dm.direct and dm.reply_thread_ts is None
    upload = parse_post(event_body(message("", channel="D1", channel_type="im", subtype="file_share")), bot_user_id="UBOT")
    assert upload is not None and upload.text == "(a message without text)"
    bare = parse_post(event_body(mention("")), bot_user_id="UBOT")
    assert bare is not None and bare.text == "@UBOT"
    for ignored in (
        message("x", bot_id="B1"),
        message("x", subtype="message_changed"),
        message("x", subtype="channel_join"),
        message("x", user="UBOT"),
        {"type": "reaction_added", "user": "U1"},
    ):
        assert parse_post(event_body(ignored), bot_user_id="UBOT") is None


async def test_the_memory_dedupe_store_claims_once() -> None:
    state = build_state("auto", backends={}, ttl_seconds=60)
    assert isinstance(state, MemoryState)
    assert await state.claim("a") is True
    assert await state.claim("a") is False
    assert await state.claim("b") is True


async def test_the_redis_dedupe_store_is_shared_by_replicas(redis_url: str) -> None:
    url = redis_url
    prefix = f"ifriend-test-{uuid.uuid4().hex[:10]}"
    backends = {"redis": {"url": url, "key_prefix": prefix}}
    one, two = (build_state("auto", backends=backends, ttl_seconds=60) for _ in range(2))
    assert isinstance(one, RedisState) and isinstance(two, RedisState)
    try:
        assert await one.claim("T:C:1.1") is True
        assert await two.claim("T:C:1.1") is False
        assert await two.claim("T:C:1.2") is True
        await one.set("dm:x", "slack:T:D:dm")
        assert await two.get("dm:x") == "slack:T:D:dm"
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(url)
        try:
            ttl = await client.ttl(f"{prefix}:slack:seen:T:C:1.1")
        finally:
            await client.aclose()
        assert 0 < ttl <= 60
    finally:
        await one.close()
        await two.close()
        await delete_redis_keys(url, prefix)


async def test_an_unreachable_dedupe_store_lets_events_through() -> None:
    state = RedisState(url="redis://127.0.0.1:1/0", key_prefix="x", ttl_seconds=60, timeout_seconds=0.5)
    try:
        assert await state.claim("k") is True
        assert await state.get("k") is None
    finally:
        await state.close()


def test_dedupe_redis_without_redis_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="backends.redis"):
        build_state("redis", backends={}, ttl_seconds=60)
