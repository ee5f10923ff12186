"""Appending events: partial events not stored, order and last-update time kept, an unknown
session refused, a fully populated event round-tripping.

One behaviour per test, for every backend of the contract suite (`backends.SUITE`); the
reference is `google.adk.sessions.InMemorySessionService` (see `helpers.py` for where
ifriend differs).
"""

from __future__ import annotations

import time

import pytest
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions, EventCompaction
from google.adk.sessions.session import Session
from google.genai import types

from .helpers import USER, event, get, ids


async def test_partial_events_are_not_stored(session_service, app_name):
    s = await session_service.create_session(
        app_name=app_name, user_id=USER, session_id="s", state={"k": 0}
    )
    before = s.last_update_time
    e = event(state={"k": 1, "app:a": 1, "temp:t": 1}, partial=True, timestamp=before + 50)

    assert await session_service.append_event(s, e) is e

    assert (s.events, s.state, s.last_update_time) == ([], {"k": 0}, before)
    stored = await get(session_service, app_name, "s")
    assert (stored.events, stored.state, stored.last_update_time) == ([], {"k": 0}, before)
    assert e.actions.state_delta == {"k": 1, "app:a": 1, "temp:t": 1}


async def test_event_order_is_preserved(session_service, app_name):
    s = await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")
    t = time.time()
    # Equal timestamps included: order is the order of appends, not of time or of id.
    appended = [event(text=f"m{i}", timestamp=t + (i // 3)) for i in range(12)]
    for e in appended:
        await session_service.append_event(s, e)

    stored = await get(session_service, app_name, "s")

    assert ids(stored.events) == ids(appended)
    assert [e.content.parts[0].text for e in stored.events] == [f"m{i}" for i in range(12)]


async def test_last_update_time_is_the_last_event_timestamp(session_service, app_name):
    t0 = time.time()
    s = await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")
    assert t0 <= s.last_update_time <= time.time()
    assert (await get(session_service, app_name, "s")).last_update_time == s.last_update_time

    await session_service.append_event(s, event(timestamp=t0 + 100.25))
    assert s.last_update_time == t0 + 100.25
    assert (await get(session_service, app_name, "s")).last_update_time == t0 + 100.25

    await session_service.append_event(s, event(timestamp=t0 + 200.5))
    assert (await get(session_service, app_name, "s")).last_update_time == t0 + 200.5
    listed = await session_service.list_sessions(app_name=app_name, user_id=USER)
    assert listed.sessions[0].last_update_time == t0 + 200.5


async def test_append_to_an_unknown_session_raises(session_service, app_name):
    ghost = Session(id="ghost", app_name=app_name, user_id=USER)
    with pytest.raises(SessionNotFoundError):
        await session_service.append_event(ghost, event())

    s = await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")
    await session_service.delete_session(app_name=app_name, user_id=USER, session_id="s")
    with pytest.raises(SessionNotFoundError):
        await session_service.append_event(s, event())

    assert await get(session_service, app_name, "ghost") is None
    assert await get(session_service, app_name, "s") is None


async def test_an_event_id_may_recur_in_another_session(session_service, app_name):
    a = await session_service.create_session(app_name=app_name, user_id=USER, session_id="a")
    b = await session_service.create_session(app_name=app_name, user_id=USER, session_id="b")
    e = event(state={"k": "a"})
    e_in_b = e.model_copy(deep=True, update={"actions": EventActions(state_delta={"k": "b"})})

    await session_service.append_event(a, e)
    await session_service.append_event(b, e_in_b)

    assert ids((await get(session_service, app_name, "a")).events) == [e.id]
    assert ids((await get(session_service, app_name, "b")).events) == [e.id]
    assert (await get(session_service, app_name, "b")).state == {"k": "b"}


def fully_populated_event() -> Event:
    return Event(
        invocation_id="inv-42",
        author="helper_agent",
        branch="root_agent.helper_agent",
        timestamp=1_750_000_000.123456,
        model_version="test-model-1",
        content=types.Content(
            role="model",
            parts=[
                types.Part(text="Here you go: é, 日本, 🙂."),
                types.Part(
                    function_call=types.FunctionCall(
                        id="call-1",
                        name="lookup",
                        args={"q": "weather", "n": 3, "nested": {"xs": [1, 2.5, None, True]}},
                    )
                ),
                types.Part(
                    function_response=types.FunctionResponse(
                        id="call-1", name="lookup", response={"result": {"temp_c": 21.5}}
                    )
                ),
                types.Part(
                    inline_data=types.Blob(
                        mime_type="application/octet-stream", data=bytes(range(256))
                    )
                ),
            ],
        ),
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=11, candidates_token_count=7, total_token_count=18
        ),
        grounding_metadata=types.GroundingMetadata(web_search_queries=["weather in Paris"]),
        custom_metadata={"trace": "abc", "n": 1, "nested": {"list": [1, "two"]}},
        finish_reason=types.FinishReason.STOP,
        turn_complete=True,
        long_running_tool_ids={"call-1", "call-2"},
        actions=EventActions(
            state_delta={"k": {"a": [1, 2]}, "app:a": "A", "user:u": 1.5},
            artifact_delta={"report.txt": 2},
            transfer_to_agent="other_agent",
            escalate=True,
            skip_summarization=True,
            # what ADK's events compaction appends (docs/compaction.md)
            compaction=EventCompaction(
                start_timestamp=1_749_999_000.5,
                end_timestamp=1_749_999_999.25,
                compacted_content=types.Content(role="model", parts=[types.Part(text="summary: é 🙂")]),
            ),
        ),
    )


async def test_a_fully_populated_event_round_trips(session_service, app_name):
    s = await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")
    e = fully_populated_event()
    expected = e.model_copy(deep=True)

    await session_service.append_event(s, e)

    stored = (await get(session_service, app_name, "s")).events
    assert len(stored) == 1
    assert stored[0] == expected
    assert stored[0].content.parts[3].inline_data.data == bytes(range(256))
    assert stored[0].long_running_tool_ids == {"call-1", "call-2"}
