"""Two replicas on the tiered store race on one conversation: the loser retries, nothing is
lost or repeated."""

from __future__ import annotations

import asyncio
import logging

import pytest
from google.adk.agents.llm_agent import LlmAgent
from pydantic import Field

from ifriend.conversations import Conversations
from ifriend.models import EchoModel

from .apps import MakeApp


class GatedEcho(EchoModel):
    """The echo model, holding its first answer until `gate` opens."""

    gate: asyncio.Event = Field(default_factory=asyncio.Event)
    calls: int = 0

    async def generate_content_async(self, llm_request, stream=False):
        self.calls += 1
        await self.gate.wait()
        async for response in super().generate_content_async(llm_request, stream=stream):
            yield response


async def test_a_turn_that_loses_a_race_with_another_replica_is_retried(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ifriend.conversations")
    replica_a, replica_b = await make_app(), await make_app()
    model = GatedEcho()
    slow = Conversations(
        app_name="ifriend",
        agent=LlmAgent(name="ifriend_assistant", model=model),
        session_service=replica_a.session_service,
    )
    ids = {"user_id": "U1", "session_id": "thread-1"}

    async def run_a() -> str:
        replies = [r async for r in slow.turn(**ids, text="first, from replica A")]
        return replies[-1].text

    turn_a = asyncio.create_task(run_a())
    while model.calls == 0:  # A stored the user's message and waits in the model
        await asyncio.sleep(0.01)
    replies_b = [r async for r in replica_b.conversations.turn(**ids, text="second, via B")]
    assert 'Earlier you said: "first, from replica A"' in replies_b[-1].text
    model.gate.set()
    answer_a = await turn_a

    assert "lost a race with another writer (StaleSessionError)" in caplog.text
    assert model.calls == 2  # the model ran again on the reloaded session
    assert answer_a.startswith("[ifriend-echo] ")
    session = await replica_b.session_service.get_session(app_name="ifriend", **ids)
    said = [e.content.parts[0].text for e in session.events if e.author == "user"]
    assert said == ["first, from replica A", "second, via B"]  # once each, in order
    authors = [e.author for e in session.events]
    assert authors == ["user", "user", "ifriend_assistant", "ifriend_assistant"]
    assert session.events[-1].content.parts[0].text == answer_a
