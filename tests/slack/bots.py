"""Bots running the real slack-bolt app over HTTP or Socket Mode against a fake Slack Web API:
the helpers of the Slack tests, and the fixtures `fake_slack` and `make_bot` (used by the
Slack and telemetry tests through their conftest modules)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from ifriend import App, Settings
from ifriend_slack.channel import SlackChannel
from ifriend_slack.testing import EventPoster, FakeSlack, SocketEvents

SECRET = "test-signing-secret-0123456789abcdef"
BOT_TOKEN = "xoxb-test-bot-token-000000000000"
APP_TOKEN = "xapp-test-app-token-000000000000"


@dataclass
class Bot:
    """One running replica: its App, its Slack channel and a client posting signed events."""

    app: App
    channel: SlackChannel
    events: EventPoster | SocketEvents

    async def history(self, user: str, session_id: str) -> list[tuple[str, str]]:
        """(author, text) of every event of a session."""
        return [
            (e.author, "".join(p.text or "" for p in (e.content.parts or [])) if e.content else "")
            for e in await self.events_of(user, session_id)
        ]

    async def events_of(self, user: str, session_id: str) -> list[Any]:
        """The ADK events of a session."""
        c = self.app.conversations
        session = await c.session_service.get_session(app_name=c.app_name, user_id=user, session_id=session_id)
        assert session is not None, f"no session {session_id}"
        return list(session.events)

    async def settle(self) -> None:
        """Wait until every background turn of the bot is done."""
        await self.channel.drain(10)


MakeBot = Callable[..., Awaitable[Bot]]


def earlier_count(answer: str) -> int:
    """How many earlier messages of the conversation the echo model says it saw."""
    if "Earlier you said" not in answer:
        return 0
    counted = re.search(r"\((\d+) earlier messages?", answer)
    return int(counted.group(1)) if counted else 1


def slack_options(fake: FakeSlack, **overrides: Any) -> dict[str, Any]:
    """A bot in HTTP mode against `fake`; answers posted and edited (the path of the tests
    written before native streaming; tests of streaming and the status turn them on)."""
    return {
        "mode": "http",
        "bot_token": BOT_TOKEN,
        "signing_secret": SECRET,
        "host": "127.0.0.1",
        "port": 0,
        "api_url": fake.api_url,
        "update_interval_seconds": 0.5,
        "shutdown_grace_seconds": 5,
        "streaming": False,
        "assistant_status": False,
        **overrides,
    }


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


async def start_bot(stack: AsyncExitStack, settings: dict[str, Any], fake: FakeSlack | None = None) -> Bot:
    app = await stack.enter_async_context(App(Settings.model_validate(settings)))
    channel = app.build_channel("slack")
    assert isinstance(channel, SlackChannel)
    stack.push_async_callback(channel.close)
    await channel.start()
    if channel.settings.mode == "socket":
        assert fake is not None, "a Socket Mode bot needs the fake Slack that serves its socket"
        await fake.wait_for(lambda: fake.connected)
        return Bot(app, channel, SocketEvents(fake))
    events = await stack.enter_async_context(EventPoster(channel.url, SECRET))
    return Bot(app, channel, events)


@pytest.fixture
async def make_bot(fake_slack: FakeSlack) -> AsyncIterator[MakeBot]:
    """`await make_bot(slack={...}, settings={...}, transport="http" | "socket")`: a started
    bot on the memory backend, receiving signed HTTP requests or Socket Mode envelopes."""
    async with AsyncExitStack() as stack:

        async def make(
            *, slack: dict[str, Any] | None = None, settings: dict[str, Any] | None = None, transport: str = "http"
        ) -> Bot:
            options = slack_options(fake_slack, **(slack or {}))
            if transport == "socket":
                options |= {"mode": "socket", "app_token": APP_TOKEN}
            merged = {**(settings or {}), "channels": {"slack": options}}
            return await start_bot(stack, merged, fake_slack)

        yield make
