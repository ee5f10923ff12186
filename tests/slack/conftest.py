"""Slack fixtures: a fake Slack Web API, and bots running the real slack-bolt app (`bots.py`)."""

from __future__ import annotations

import pytest

from .bots import Bot, MakeBot, fake_slack, make_bot  # noqa: F401 - fixtures


@pytest.fixture
async def bot(make_bot: MakeBot) -> Bot:
    return await make_bot()
