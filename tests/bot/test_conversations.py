"""`Conversations`: streamed turns, history, per-conversation order, retries after a lost race."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from google.adk.agents.base_agent import BaseAgent
from google.adk.errors import StaleSessionError
from google.adk.events.event import Event
from google.adk.sessions import InMemorySessionService
from google.genai import types
from pydantic import Field

from ifriend import App
from ifriend.assistant import build_assistant
from ifriend.conversations import Conversations, Reply
from ifriend.locks import KeyedLocks


async def replies(conversations: Conversations, text: str, session_id: str = "s") -> list[Reply]:
    return [r async for r in conversations.turn(user_id="u", session_id=session_id, text=text)]


@pytest.fixture
async def app() -> AsyncIterator[App]:
    async with App() as entered:
        yield entered


async def stored_events(app: App, session_id: str = "s") -> list[Event]:
    session = await app.session_service.get_session(app_name="ifriend", user_id="u", session_id=session_id)
    return session.events


class Gated(BaseAgent):
    """Logs when each turn starts and ends; a turn waits for its gate to open."""

    log: list[str] = Field(default_factory=list)
    gates: dict[str, asyncio.Event] = Field(default_factory=dict)
    fail_on: str | None = None

    async def _run_async_impl(self, ctx):
        said = ctx.user_content.parts[0].text
        self.log.append(f"start {said}")
        await self.gates.setdefault(said, asyncio.Event()).wait()
        if said == self.fail_on:
            raise RuntimeError("the agent broke")
        self.log.append(f"end {said}")
        yield Event(
            author=self.name,
            invocation_id=ctx.invocation_id,
            content=types.Content(role="model", parts=[types.Part(text=f"done {said}")]),
        )


def gated_conversations(**fields) -> tuple[Conversations, Gated]:
    agent = Gated(name="gated", **fields)
    service = InMemorySessionService()
    return Conversations(app_name="gated", agent=agent, session_service=service), agent


async def test_app_conversations_exist_only_inside_the_app() -> None:
    app = App()
    with pytest.raises(RuntimeError, match="async with app"):
        app.conversations
    async with app:
        assert isinstance(app.conversations, Conversations)
    with pytest.raises(RuntimeError):
        app.conversations


async def test_a_turn_streams_and_ends_with_a_final_reply(app: App) -> None:
    updates = await replies(app.conversations, "hello there, my name is Bob")
    *partial, final = updates
    assert len(partial) >= 3 and not any(r.final for r in partial)
    assert final.final and final.text.startswith("[ifriend-echo] ")
    assert 'You said: "hello there, my name is Bob"' in final.text
    for before, after in zip(updates, updates[1:]):
        assert after.text.startswith(before.text)  # each update extends the last
    assert final.text == partial[-1].text


async def test_the_second_turn_recalls_the_first(app: App) -> None:
    await replies(app.conversations, "my name is Bob")
    final = (await replies(app.conversations, "what is my name?"))[-1]
    assert 'Earlier you said: "my name is Bob"' in final.text


async def test_a_tool_round_trip_answers_with_the_result(app: App) -> None:
    final = (await replies(app.conversations, "what time is it?"))[-1]
    assert final.final and "The tool get_current_time returned: " in final.text
    assert final.text.endswith(" UTC")
    kinds = [
        "call" if e.get_function_calls() else "result" if e.get_function_responses() else e.author
        for e in await stored_events(app)
    ]
    assert kinds == ["user", "call", "result", "ifriend_assistant"]


async def test_sessions_are_separate_conversations(app: App) -> None:
    await replies(app.conversations, "in session one", session_id="one")
    final = (await replies(app.conversations, "in session two", session_id="two"))[-1]
    assert "start of our conversation" in final.text


async def test_new_and_listed_sessions(app: App) -> None:
    conversations = app.conversations
    first = await conversations.new_session_id(user_id="u")
    second = await conversations.new_session_id(user_id="u")
    assert first != second
    await replies(conversations, "hi", session_id=first)  # now the most recently updated
    assert await conversations.list_sessions(user_id="u") == [second, first]
    assert await conversations.list_sessions(user_id="someone else") == []


async def test_turns_of_one_conversation_run_one_at_a_time_in_order() -> None:
    conversations, agent = gated_conversations()
    first = asyncio.create_task(replies(conversations, "one"))
    second = asyncio.create_task(replies(conversations, "two"))
    await asyncio.sleep(0.05)
    assert agent.log == ["start one"]  # "two" waits although "one" is blocked
    agent.gates["two"] = asyncio.Event()
    agent.gates["two"].set()
    agent.gates["one"].set()
    assert (await first)[-1].text == "done one"
    assert (await second)[-1].text == "done two"
    assert agent.log == ["start one", "end one", "start two", "end two"]
    assert len(conversations._locks) == 0  # idle locks are dropped


async def test_different_conversations_run_concurrently() -> None:
    conversations, agent = gated_conversations()
    first = asyncio.create_task(replies(conversations, "one", session_id="a"))
    second = asyncio.create_task(replies(conversations, "two", session_id="b"))
    await asyncio.sleep(0.05)
    assert sorted(agent.log) == ["start one", "start two"]  # both started, neither ended
    agent.gates["two"].set()
    assert (await second)[-1].text == "done two"
    assert not first.done()
    agent.gates["one"].set()
    assert (await first)[-1].text == "done one"


async def test_an_agent_exception_propagates_and_frees_the_conversation() -> None:
    conversations, agent = gated_conversations(fail_on="boom")
    agent.gates["boom"] = asyncio.Event()
    agent.gates["boom"].set()
    with pytest.raises(RuntimeError, match="the agent broke"):
        await replies(conversations, "boom")
    agent.gates["after"] = asyncio.Event()
    agent.gates["after"].set()
    assert (await replies(conversations, "after"))[-1].text == "done after"
    assert len(conversations._locks) == 0


async def test_keyed_locks_are_fifo_and_dropped_when_idle() -> None:
    locks, order = KeyedLocks(), []

    async def hold(key: str, label: str) -> None:
        async with locks.hold(key):
            order.append(label)
            await asyncio.sleep(0.01)

    await asyncio.gather(*(hold("k", str(i)) for i in range(5)), hold("other", "x"))
    assert [o for o in order if o != "x"] == ["0", "1", "2", "3", "4"]
    assert len(locks) == 0


class RacingSessions(InMemorySessionService):
    """Raises `StaleSessionError` on the listed appends (1 = the turn's first), as if another
    replica had written in between."""

    def __init__(self, *stale_at: int) -> None:
        super().__init__()
        self.stale_at = set(stale_at)
        self.appends = 0

    async def append_event(self, session, event):
        if not event.partial:
            self.appends += 1
            if self.appends in self.stale_at:
                raise StaleSessionError("another replica wrote first")
        return await super().append_event(session, event)


# A tool turn appends: 1 the user's message, 2 the call, 3 the result, 4 the answer.
@pytest.mark.parametrize("stale_at", [1, 2, 3, 4])
async def test_a_lost_race_is_retried_once_keeping_the_message_exactly_once(
    stale_at: int, caplog: pytest.LogCaptureFixture
) -> None:
    service = RacingSessions(stale_at)
    conversations = Conversations(app_name="a", agent=build_assistant(), session_service=service)
    final = [r async for r in conversations.turn(user_id="u", session_id="s", text="time please?")][-1]
    assert final.final and "The tool get_current_time returned" in final.text
    assert "lost a race" in caplog.text
    session = await service.get_session(app_name="a", user_id="u", session_id="s")
    said = [e for e in session.events if e.author == "user"]
    assert len(said) == 1 and said[0].content.parts[0].text == "time please?"
    answers = [e for e in session.events if e.content and e.content.parts[0].text]
    assert [e.author for e in answers] == ["user", "ifriend_assistant"]
    assert len({e.invocation_id for e in session.events}) == 1  # one turn, one invocation


async def test_a_second_lost_race_propagates() -> None:
    service = RacingSessions(2, 3)
    conversations = Conversations(app_name="a", agent=build_assistant(), session_service=service)
    with pytest.raises(StaleSessionError):
        [r async for r in conversations.turn(user_id="u", session_id="s", text="hello")]
    assert len(conversations._locks) == 0
