"""Concurrent appends, for every backend in `BACKENDS`.

Appends through one `Session` object queue up in call order (ADK's `run_live` appends
from two tasks through `invocation_context.session`); two different copies still race,
and the later writer gets `StaleSessionError`, carrying no driver error in its chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from google.adk.agents import LlmAgent
from google.adk.agents.live_request_queue import LiveRequestQueue
from google.adk.errors._stale_session_error import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.models.base_llm_connection import BaseLlmConnection
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.adk.sessions.session import Session
from google.genai import types

from ifriend.models.echo import EchoModel
from ifriend.sessions.store import Revision

USER = "u1"
N = 20


def event(n: int, *, author: str = "user") -> Event:
    return Event(
        author=author,
        invocation_id="inv-1",
        content=types.Content(role="user", parts=[types.Part(text=f"m{n}")]),
        actions=EventActions(state_delta={"last": n, f"k{n}": n}),
        timestamp=time.time(),
    )


def ids(events: list[Event]) -> list[str]:
    return [e.id for e in events]


def version(session: Session) -> int:
    revision = Revision.from_marker(session._storage_update_marker)
    assert revision is not None
    return revision.version


def chain(error: BaseException) -> list[BaseException]:
    """`error` and every exception reachable through `__cause__` and `__context__`."""
    seen: list[BaseException] = []
    todo = [error]
    while todo:
        e = todo.pop()
        if any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [x for x in (e.__cause__, e.__context__) if x is not None]
    return seen


async def load(service, app_name: str, sid: str = "s") -> Session:
    session = await service.get_session(app_name=app_name, user_id=USER, session_id=sid)
    assert session is not None
    return session


async def test_concurrent_appends_through_one_session_keep_call_order(session_service, app_name):
    s = await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")
    events = [event(n) for n in range(N)]

    returned = await asyncio.gather(*(session_service.append_event(s, e) for e in events))

    assert ids(returned) == ids(events)
    assert ids(s.events) == ids(events)
    assert version(s) == N
    assert s.state == {"last": N - 1, **{f"k{n}": n for n in range(N)}}
    stored = await load(session_service, app_name)
    assert ids(stored.events) == ids(events)
    assert stored.state == s.state
    assert stored._storage_update_marker == s._storage_update_marker
    assert stored.last_update_time == s.last_update_time == events[-1].timestamp
    assert len(session_service._appends) == 0  # no lock left behind
    # The object is still current.
    after = event(N)
    await session_service.append_event(s, after)
    assert ids((await load(session_service, app_name)).events) == ids(events) + [after.id]


async def test_concurrent_appends_through_a_hand_built_session_keep_call_order(
    session_service, app_name
):
    await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")
    by_hand = Session(id="s", app_name=app_name, user_id=USER)
    events = [event(n) for n in range(N)]

    await asyncio.gather(*(session_service.append_event(by_hand, e) for e in events))

    assert ids(by_hand.events) == ids(events)
    assert ids((await load(session_service, app_name)).events) == ids(events)


async def test_a_second_copy_is_still_stale_while_the_first_appends(session_service, app_name):
    await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")
    a = await load(session_service, app_name)
    b = await load(session_service, app_name)
    events = [event(n) for n in range(N)]

    queued = [asyncio.create_task(session_service.append_event(a, e)) for e in events]
    await queued[0]
    with pytest.raises(StaleSessionError):  # `a` wrote since `b` was loaded
        await session_service.append_event(b, event(-1, author="other"))
    await asyncio.gather(*queued)

    assert ids(a.events) == ids(events)
    assert version(a) == N
    stored = await load(session_service, app_name)
    assert ids(stored.events) == ids(events)
    assert stored.state["last"] == N - 1


async def test_two_copies_appending_concurrently_never_both_win(session_service, app_name):
    await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")
    a = await load(session_service, app_name)
    b = await load(session_service, app_name)
    writes = [(copy, event(n)) for n in range(4) for copy in (a, b)]

    outcomes = await asyncio.gather(
        *(session_service.append_event(copy, e) for copy, e in writes), return_exceptions=True
    )

    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert failed and all(isinstance(o, StaleSessionError) for o in failed)
    won = [e.id for (_, e), o in zip(writes, outcomes) if not isinstance(o, BaseException)]
    stored = await load(session_service, app_name)
    assert len(won) == 4 and ids(stored.events) == won
    # Only one copy's appends landed, all of them, in call order.
    assert ids(a.events) == won or ids(b.events) == won


async def test_a_cancelled_append_does_not_block_the_ones_queued_behind_it(
    session_service, app_name
):
    s = await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")
    first, cancelled, last = event(0), event(1), event(2)

    # Holding the object's turn (the service's own lock) queues all three behind it.
    async with session_service._appends.hold(id(s)):
        tasks = [
            asyncio.create_task(session_service.append_event(s, e))
            for e in (first, cancelled, last)
        ]
        await asyncio.sleep(0.01)
        assert not any(t.done() for t in tasks)
        tasks[1].cancel()
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=10)

    assert isinstance(results[1], asyncio.CancelledError)
    assert ids(s.events) == [first.id, last.id]
    assert ids((await load(session_service, app_name)).events) == [first.id, last.id]
    assert len(session_service._appends) == 0  # no lock left behind


def _no_driver_error(error: BaseException) -> None:
    assert chain(error) == [error], [type(e).__qualname__ for e in chain(error)]


async def test_errors_of_an_append_carry_no_driver_error(session_service, app_name):
    await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")
    stale = await load(session_service, app_name)
    await session_service.append_event(await load(session_service, app_name), event(0))
    with pytest.raises(StaleSessionError) as behind:
        await session_service.append_event(stale, event(1))
    _no_driver_error(behind.value)

    by_hand = Session(id="s", app_name=app_name, user_id=USER)  # not where the log stands
    with pytest.raises(StaleSessionError) as hand_built:
        await session_service.append_event(by_hand, event(2))
    _no_driver_error(hand_built.value)

    gone = await load(session_service, app_name)
    await session_service.delete_session(app_name=app_name, user_id=USER, session_id="s")
    with pytest.raises(SessionNotFoundError) as deleted:
        await session_service.append_event(gone, event(3))
    _no_driver_error(deleted.value)

    await session_service.create_session(app_name=app_name, user_id=USER, session_id="t")
    with pytest.raises(AlreadyExistsError) as exists:
        await session_service.create_session(app_name=app_name, user_id=USER, session_id="t")
    _no_driver_error(exists.value)


# --- ADK's own pattern: run_live appends from its sender and receiver tasks -------------


class _EchoConnection(BaseLlmConnection):
    """A live connection that answers each message at once, with one complete turn."""

    def __init__(self) -> None:
        self.replies: asyncio.Queue[LlmResponse | None] = asyncio.Queue()

    async def send_history(self, history: list[types.Content]) -> None:
        pass

    async def send_content(self, content: types.Content) -> None:
        text = f"re {content.parts[0].text}"
        reply = types.Content(role="model", parts=[types.Part(text=text)])
        await self.replies.put(LlmResponse(content=reply, turn_complete=True))

    async def send_realtime(self, blob: types.Blob) -> None:
        pass

    async def receive(self) -> AsyncIterator[LlmResponse]:
        while (reply := await self.replies.get()) is not None:
            yield reply
        self.replies.put_nowait(None)  # closed: later calls end at once too

    async def close(self) -> None:
        await self.replies.put(None)


class _LiveEcho(EchoModel):
    @contextlib.asynccontextmanager
    async def connect(self, llm_request: LlmRequest) -> AsyncIterator[_EchoConnection]:
        yield _EchoConnection()


async def test_run_live_stores_every_message_and_reply(session_service, app_name):
    s = await session_service.create_session(app_name=app_name, user_id=USER)
    runner = Runner(
        app_name=app_name,
        agent=LlmAgent(name="assistant", model=_LiveEcho()),
        session_service=session_service,
    )
    queue = LiveRequestQueue()
    said = [f"m{n}" for n in range(10)]
    for text in said:
        queue.send_content(types.Content(role="user", parts=[types.Part(text=text)]))

    replies = 0
    # A sender task that died of StaleSessionError would leave run_live waiting forever.
    async with asyncio.timeout(10):
        async for e in runner.run_live(user_id=USER, session_id=s.id, live_request_queue=queue):
            if e.author == "assistant" and e.content:
                replies += 1
                if replies == len(said):
                    queue.close()

    stored = await load(session_service, app_name, s.id)
    texts = [(e.author, e.content.parts[0].text) for e in stored.events if e.content]
    assert [t for a, t in texts if a == "user"] == said
    assert [t for a, t in texts if a == "assistant"] == [f"re {t}" for t in said]
    assert len(stored.events) == 2 * len(said)
