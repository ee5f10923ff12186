"""ADK's session contract, one behaviour per test, for every backend in `BACKENDS`.

The reference is `google.adk.sessions.InMemorySessionService`; ifriend differs where
DESIGN.md says so: a write from a stale copy raises `StaleSessionError`, an event is
deduplicated on its id, and ids, state and event sizes are validated before any write.
"""

from __future__ import annotations

import math
import time
import unicodedata

import pytest
from google.adk.errors._stale_session_error import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions import InMemorySessionService
from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig
from google.adk.sessions.session import Session
from google.genai import types

from ifriend.errors import (
    EventTooLargeError,
    InvalidEventError,
    InvalidIdError,
    InvalidStateError,
    StateTooLargeError,
)

USER = "u1"


def event(
    *,
    author: str = "user",
    text: str | None = "hi",
    state: dict | None = None,
    timestamp: float | None = None,
    **fields,
) -> Event:
    return Event(
        author=author,
        invocation_id="inv-1",
        content=types.Content(role="user", parts=[types.Part(text=text)]) if text else None,
        actions=EventActions(state_delta=state or {}),
        timestamp=time.time() if timestamp is None else timestamp,
        **fields,
    )


async def get(service: BaseSessionService, app: str, sid: str, user: str = USER, **config):
    return await service.get_session(
        app_name=app,
        user_id=user,
        session_id=sid,
        config=GetSessionConfig(**config) if config else None,
    )


def ids(events: list[Event]) -> list[str]:
    return [e.id for e in events]


# --- create ---------------------------------------------------------------------------


async def test_create_generates_an_id(session_service, app_name):
    a = await session_service.create_session(app_name=app_name, user_id=USER)
    b = await session_service.create_session(app_name=app_name, user_id=USER)

    assert isinstance(a.id, str) and a.id.strip() == a.id != ""
    assert a.id != b.id
    assert (a.app_name, a.user_id, a.state, a.events) == (app_name, USER, {}, [])
    stored = await get(session_service, app_name, a.id)
    assert (stored.id, stored.app_name, stored.user_id) == (a.id, app_name, USER)


async def test_create_with_given_id(session_service, app_name):
    s = await session_service.create_session(app_name=app_name, user_id=USER, session_id="s-1")

    assert s.id == "s-1"
    assert (await get(session_service, app_name, "s-1")).id == "s-1"


@pytest.mark.parametrize("padded", ["  s-1  ", "s-1 ", " s-1", "   ", "s-1\u00a0"])
async def test_a_given_id_with_surrounding_whitespace_is_refused(session_service, app_name, padded):
    # ADK strips it; ifriend refuses it (README), rather than store an id other than the one given.
    with pytest.raises(InvalidIdError, match="whitespace"):
        await session_service.create_session(app_name=app_name, user_id=USER, session_id=padded)
    await session_service.create_session(app_name=app_name, user_id=USER, session_id="s-1")
    with pytest.raises(InvalidIdError):
        await get(session_service, app_name, padded)
    with pytest.raises(InvalidIdError):
        await session_service.delete_session(app_name=app_name, user_id=USER, session_id=padded)
    assert [s.id for s in (await session_service.list_sessions(app_name=app_name)).sessions] == ["s-1"]


async def test_create_without_an_id_generates_one(session_service, app_name):
    for missing in (None, ""):
        s = await session_service.create_session(app_name=app_name, user_id=USER, session_id=missing)
        assert s.id.strip() == s.id != ""
        assert (await get(session_service, app_name, s.id)).id == s.id


async def test_create_with_a_taken_id_raises_and_changes_nothing(session_service, app_name):
    await session_service.create_session(
        app_name=app_name, user_id=USER, session_id="s", state={"k": 1, "user:u": 1}
    )

    with pytest.raises(AlreadyExistsError):
        await session_service.create_session(
            app_name=app_name,
            user_id=USER,
            session_id="s",
            state={"k": 2, "app:a": 2, "user:u": 2},
        )

    assert (await get(session_service, app_name, "s")).state == {"k": 1, "user:u": 1}
    assert await session_service.get_user_state(app_name=app_name, user_id=USER) == {"u": 1}
    listed = await session_service.list_sessions(app_name=app_name)
    assert [s.id for s in listed.sessions] == ["s"]


async def test_the_same_session_id_is_distinct_per_user_and_per_app(session_service, unique):
    app1, app2 = unique(), unique()
    await session_service.create_session(app_name=app1, user_id="u1", session_id="s", state={"k": 1})
    await session_service.create_session(app_name=app1, user_id="u2", session_id="s", state={"k": 2})
    await session_service.create_session(app_name=app2, user_id="u1", session_id="s", state={"k": 3})

    assert (await get(session_service, app1, "s", "u1")).state == {"k": 1}
    assert (await get(session_service, app1, "s", "u2")).state == {"k": 2}
    assert (await get(session_service, app2, "s", "u1")).state == {"k": 3}


async def test_a_deleted_id_can_be_created_again_empty(session_service, app_name):
    s = await session_service.create_session(
        app_name=app_name, user_id=USER, session_id="s", state={"k": 1}
    )
    await session_service.append_event(s, event(state={"j": 2}))
    await session_service.delete_session(app_name=app_name, user_id=USER, session_id="s")

    again = await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")

    assert (again.state, again.events) == ({}, [])
    stored = await get(session_service, app_name, "s")
    assert (stored.state, stored.events) == ({}, [])


# --- get -------------------------------------------------------------------------------


async def test_get_unknown_session_returns_none(session_service, unique):
    app = unique()
    await session_service.create_session(app_name=app, user_id=USER, session_id="s")

    assert await get(session_service, app, "other") is None
    assert await get(session_service, app, "s", user="other-user") is None
    assert await get(session_service, unique(), "s") is None
    assert await get(session_service, app, "s") is not None


async def test_returned_sessions_are_copies(session_service, app_name):
    s = await session_service.create_session(
        app_name=app_name, user_id=USER, session_id="s", state={"k": [1], "user:u": {"a": 1}}
    )
    await session_service.append_event(s, event())
    first = await get(session_service, app_name, "s")

    first.state["k"].append(2)
    first.state["user:u"]["a"] = 2
    first.state["new"] = 1
    first.events.clear()

    again = await get(session_service, app_name, "s")
    assert again.state == {"k": [1], "user:u": {"a": 1}}
    assert len(again.events) == 1
    assert await session_service.get_user_state(app_name=app_name, user_id=USER) == {"u": {"a": 1}}


# --- list ------------------------------------------------------------------------------


async def test_list_sessions_of_one_user(session_service, app_name):
    for user, sid in [("u1", "a"), ("u1", "b"), ("u2", "c")]:
        await session_service.create_session(app_name=app_name, user_id=user, session_id=sid)

    listed = await session_service.list_sessions(app_name=app_name, user_id="u1")

    assert sorted((s.user_id, s.id) for s in listed.sessions) == [("u1", "a"), ("u1", "b")]
    assert all(s.app_name == app_name for s in listed.sessions)


async def test_list_sessions_of_all_users(session_service, app_name, unique):
    for user, sid in [("u1", "a"), ("u1", "b"), ("u2", "c")]:
        await session_service.create_session(app_name=app_name, user_id=user, session_id=sid)
    await session_service.create_session(app_name=unique(), user_id="u1", session_id="other-app")

    listed = await session_service.list_sessions(app_name=app_name, user_id=None)

    assert sorted((s.user_id, s.id) for s in listed.sessions) == [
        ("u1", "a"),
        ("u1", "b"),
        ("u2", "c"),
    ]
    assert (await session_service.list_sessions(app_name=app_name)).sessions == listed.sessions


async def test_list_of_unknown_user_or_app_is_empty(session_service, app_name, unique):
    await session_service.create_session(app_name=app_name, user_id="u1", session_id="a")

    assert (await session_service.list_sessions(app_name=app_name, user_id="u2")).sessions == []
    assert (await session_service.list_sessions(app_name=unique())).sessions == []


async def test_list_is_ordered_by_last_update_oldest_first(session_service, app_name):
    t = time.time()
    sessions = {}
    for user, sid in [("u1", "a"), ("u2", "b"), ("u1", "c")]:
        sessions[sid] = await session_service.create_session(
            app_name=app_name, user_id=user, session_id=sid
        )
    for sid, offset in [("c", 10.0), ("a", 20.0), ("b", 30.0), ("c", 40.0)]:
        await session_service.append_event(sessions[sid], event(timestamp=t + offset))

    everyone = await session_service.list_sessions(app_name=app_name)
    u1 = await session_service.list_sessions(app_name=app_name, user_id="u1")

    assert [(s.id, s.last_update_time) for s in everyone.sessions] == [
        ("a", t + 20.0),
        ("b", t + 30.0),
        ("c", t + 40.0),
    ]
    assert [s.id for s in u1.sessions] == ["a", "c"]


async def test_list_breaks_ties_by_user_then_session_id(session_service, app_name):
    t = time.time() + 100.0
    for user, sid in [("u2", "a"), ("u1", "b"), ("u1", "a"), ("u0", "z")]:
        s = await session_service.create_session(app_name=app_name, user_id=user, session_id=sid)
        await session_service.append_event(s, event(timestamp=t))

    listed = await session_service.list_sessions(app_name=app_name)

    assert [(s.user_id, s.id) for s in listed.sessions] == [
        ("u0", "z"),
        ("u1", "a"),
        ("u1", "b"),
        ("u2", "a"),
    ]


async def test_list_has_no_events_and_the_merged_state(session_service, app_name):
    s = await session_service.create_session(
        app_name=app_name, user_id="u1", session_id="a", state={"k": 1}
    )
    await session_service.append_event(s, event(state={"app:a": "A", "user:u": "U", "j": 2}))
    await session_service.create_session(app_name=app_name, user_id="u2", session_id="b")

    listed = {x.id: x for x in (await session_service.list_sessions(app_name=app_name)).sessions}

    assert listed["a"].events == [] and listed["b"].events == []
    assert listed["a"].state == {"k": 1, "j": 2, "app:a": "A", "user:u": "U"}
    assert listed["b"].state == {"app:a": "A"}
    assert listed["a"].last_update_time == s.events[-1].timestamp


# --- delete ----------------------------------------------------------------------------


async def test_delete_removes_only_that_session(session_service, app_name):
    s = await session_service.create_session(
        app_name=app_name, user_id=USER, session_id="a", state={"user:u": 1, "app:a": 1}
    )
    await session_service.append_event(s, event())
    await session_service.create_session(app_name=app_name, user_id=USER, session_id="b")

    assert await session_service.delete_session(app_name=app_name, user_id=USER, session_id="a") is None

    assert await get(session_service, app_name, "a") is None
    listed = await session_service.list_sessions(app_name=app_name)
    assert [x.id for x in listed.sessions] == ["b"]
    # As in ADK, app and user state outlive the session that set them.
    assert (await get(session_service, app_name, "b")).state == {"user:u": 1, "app:a": 1}
    assert await session_service.get_user_state(app_name=app_name, user_id=USER) == {"u": 1}


async def test_delete_unknown_session_is_a_noop(session_service, app_name, unique):
    await session_service.create_session(app_name=app_name, user_id=USER, session_id="a")

    await session_service.delete_session(app_name=app_name, user_id=USER, session_id="nope")
    await session_service.delete_session(app_name=app_name, user_id="nobody", session_id="a")
    await session_service.delete_session(app_name=unique(), user_id=USER, session_id="a")

    assert (await get(session_service, app_name, "a")).id == "a"


# --- state scopes ----------------------------------------------------------------------


async def test_state_scopes_set_at_create(session_service, unique):
    app, other_app = unique(), unique()
    s = await session_service.create_session(
        app_name=app,
        user_id="u1",
        session_id="a",
        state={"k": 1, "app:a": 2, "user:u": 3, "temp:t": 4},
    )

    assert s.state == {"k": 1, "app:a": 2, "user:u": 3}
    same_user = await session_service.create_session(app_name=app, user_id="u1", session_id="b")
    other_user = await session_service.create_session(app_name=app, user_id="u2", session_id="c")
    elsewhere = await session_service.create_session(app_name=other_app, user_id="u1")
    assert same_user.state == {"app:a": 2, "user:u": 3}
    assert other_user.state == {"app:a": 2}
    assert elsewhere.state == {}
    assert (await get(session_service, app, "a", "u1")).state == {"k": 1, "app:a": 2, "user:u": 3}


async def test_state_scopes_set_by_an_event(session_service, unique):
    app, other_app = unique(), unique()
    a = await session_service.create_session(app_name=app, user_id="u1", session_id="a")
    b = await session_service.create_session(app_name=app, user_id="u1", session_id="b")
    c = await session_service.create_session(app_name=app, user_id="u2", session_id="c")
    elsewhere = await session_service.create_session(app_name=other_app, user_id="u1", session_id="a")

    await session_service.append_event(a, event(state={"k": 1, "app:a": 2, "user:u": 3}))

    assert (await get(session_service, app, "a", "u1")).state == {"k": 1, "app:a": 2, "user:u": 3}
    assert (await get(session_service, app, "b", "u1")).state == {"app:a": 2, "user:u": 3}
    assert (await get(session_service, app, "c", "u2")).state == {"app:a": 2}
    assert (await get(session_service, other_app, "a", "u1")).state == {}
    # Copies read before the event are not updated in place (they are copies).
    assert (b.state, c.state, elsewhere.state) == ({}, {}, {})


async def test_later_writes_to_a_scope_win(session_service, app_name):
    a = await session_service.create_session(
        app_name=app_name, user_id=USER, session_id="a", state={"app:x": 1, "user:y": 1, "z": 1}
    )
    b = await session_service.create_session(
        app_name=app_name, user_id=USER, session_id="b", state={"app:x": 2}
    )
    await session_service.append_event(b, event(state={"user:y": 3, "z": 3}))
    await session_service.append_event(a, event(state={"app:x": 4}))

    assert (await get(session_service, app_name, "a")).state == {"app:x": 4, "user:y": 3, "z": 1}
    assert (await get(session_service, app_name, "b")).state == {"app:x": 4, "user:y": 3, "z": 3}


async def test_append_updates_the_callers_session(session_service, app_name):
    s = await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")
    e = event(state={"k": 1, "app:a": 2, "user:u": 3}, timestamp=time.time() + 5)

    returned = await session_service.append_event(s, e)

    assert returned is e
    assert ids(s.events) == [e.id]
    assert s.state == {"k": 1, "app:a": 2, "user:u": 3}
    assert s.last_update_time == e.timestamp


async def test_temp_state_is_never_persisted(session_service, app_name):
    s = await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")
    e = event(state={"temp:t": 1, "k": 2, "temp:obj": {1, 2}})

    returned = await session_service.append_event(s, e)

    # Visible to the rest of the invocation through the caller's session object...
    assert s.state == {"temp:t": 1, "temp:obj": {1, 2}, "k": 2}
    assert returned.actions.state_delta == {"k": 2}
    # ...and nowhere in storage.
    stored = await get(session_service, app_name, "s")
    assert stored.state == {"k": 2}
    assert [x.actions.state_delta for x in stored.events] == [{"k": 2}]
    listed = await session_service.list_sessions(app_name=app_name, user_id=USER)
    assert listed.sessions[0].state == {"k": 2}


async def test_temp_state_given_at_create_is_dropped(session_service, app_name):
    s = await session_service.create_session(
        app_name=app_name, user_id=USER, session_id="s", state={"temp:t": {"not", "json"}, "k": 1}
    )

    assert s.state == {"k": 1}
    assert (await get(session_service, app_name, "s")).state == {"k": 1}


async def test_get_user_state_returns_raw_keys(session_service, unique):
    app = unique()
    s = await session_service.create_session(
        app_name=app, user_id="u1", state={"user:a": 1, "app:x": 1, "k": 1, "temp:t": 1}
    )
    await session_service.append_event(s, event(state={"user:b": [2], "user:a": 3, "app:y": 1}))
    await session_service.create_session(app_name=app, user_id="u2", state={"user:c": 4})

    assert await session_service.get_user_state(app_name=app, user_id="u1") == {"a": 3, "b": [2]}
    assert await session_service.get_user_state(app_name=app, user_id="u2") == {"c": 4}


async def test_get_user_state_is_empty_when_none_was_set(session_service, unique):
    app = unique()
    await session_service.create_session(app_name=app, user_id="u1", state={"k": 1, "app:a": 1})

    assert await session_service.get_user_state(app_name=app, user_id="u1") == {}
    assert await session_service.get_user_state(app_name=app, user_id="never-seen") == {}
    assert await session_service.get_user_state(app_name=unique(), user_id="u1") == {}


# --- events ----------------------------------------------------------------------------


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


# --- GetSessionConfig ------------------------------------------------------------------


async def session_with_events(service, app_name, timestamps) -> list[Event]:
    s = await service.create_session(
        app_name=app_name, user_id=USER, session_id="s", state={"k": 1, "user:u": 2}
    )
    events = [event(text=f"e{i}", timestamp=t) for i, t in enumerate(timestamps)]
    for e in events:
        await service.append_event(s, e)
    return events


@pytest.mark.parametrize(
    ("n", "expected"), [(0, []), (1, [4]), (2, [3, 4]), (5, [0, 1, 2, 3, 4]), (9, [0, 1, 2, 3, 4])]
)
async def test_num_recent_events(session_service, app_name, n, expected):
    events = await session_with_events(session_service, app_name, [10.0, 20.0, 30.0, 40.0, 50.0])

    got = await get(session_service, app_name, "s", num_recent_events=n)

    assert ids(got.events) == [events[i].id for i in expected]
    assert got.state == {"k": 1, "user:u": 2}
    assert got.last_update_time == 50.0


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (5.0, [0, 1, 2, 3, 4]),
        (10.0, [0, 1, 2, 3, 4]),
        (20.0, [1, 2, 3, 4]),
        (25.0, [2, 3, 4]),
        (50.0, [4]),
        (50.5, []),
    ],
)
async def test_after_timestamp_is_inclusive(session_service, app_name, after, expected):
    events = await session_with_events(session_service, app_name, [10.0, 20.0, 30.0, 40.0, 50.0])

    got = await get(session_service, app_name, "s", after_timestamp=after)

    assert ids(got.events) == [events[i].id for i in expected]
    assert got.state == {"k": 1, "user:u": 2}


@pytest.mark.parametrize(
    ("n", "after", "expected"),
    [
        (3, 20.0, [2, 3, 4]),  # the tail is taken first, then filtered by time
        (3, 35.0, [3, 4]),
        (2, 10.0, [3, 4]),
        (0, 10.0, []),
        (9, 30.0, [2, 3, 4]),
        (1, 60.0, []),
    ],
)
async def test_num_recent_events_and_after_timestamp_combined(
    session_service, app_name, n, after, expected
):
    events = await session_with_events(session_service, app_name, [10.0, 20.0, 30.0, 40.0, 50.0])

    got = await get(session_service, app_name, "s", num_recent_events=n, after_timestamp=after)

    assert ids(got.events) == [events[i].id for i in expected]


CONFIGS = [
    {},
    {"num_recent_events": 0},
    {"num_recent_events": 2},
    {"after_timestamp": 20.0},
    {"after_timestamp": 30.0},
    {"num_recent_events": 3, "after_timestamp": 20.0},
    {"num_recent_events": 4, "after_timestamp": 25.0},
]


@pytest.mark.parametrize(
    "timestamps",
    [
        pytest.param([10.0, 20.0, 20.0, 30.0, 40.0], id="ties"),
        # Out of order (clock skew between replicas): InMemorySessionService returns the
        # tail after the last event older than after_timestamp, not a filter by time.
        pytest.param([10.0, 30.0, 15.0, 40.0, 25.0, 50.0], id="out-of-order"),
    ],
)
async def test_get_session_config_matches_adk_in_memory(session_service, app_name, timestamps):
    ours = await session_with_events(session_service, app_name, timestamps)
    adk = InMemorySessionService()
    await session_with_events(adk, app_name, timestamps)
    position = {e.id: i for i, e in enumerate(ours)}
    adk_position = {e.id: i for i, e in enumerate((await get(adk, app_name, "s")).events)}

    for config in CONFIGS:
        got = await get(session_service, app_name, "s", **config)
        want = await get(adk, app_name, "s", **config)
        assert [position[e.id] for e in got.events] == [
            adk_position[e.id] for e in want.events
        ], config


async def test_out_of_order_after_timestamp_is_the_tail_after_the_last_older_event(
    session_service, app_name
):
    events = await session_with_events(session_service, app_name, [10.0, 30.0, 15.0, 40.0, 25.0])

    got = await get(session_service, app_name, "s", after_timestamp=20.0)

    # 15.0 is the last event older than 20.0: everything after it, 40.0 and 25.0, is returned.
    assert ids(got.events) == [events[3].id, events[4].id]


# --- stale copies and retries ----------------------------------------------------------


async def test_a_stale_copy_is_rejected_and_writes_nothing(session_service, app_name):
    await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")
    a = await get(session_service, app_name, "s")
    b = await get(session_service, app_name, "s")
    first = event(state={"k": "a"})

    await session_service.append_event(a, first)
    with pytest.raises(StaleSessionError):
        await session_service.append_event(b, event(state={"k": "b", "app:x": 1, "user:y": 1}))

    stored = await get(session_service, app_name, "s")
    assert ids(stored.events) == [first.id]
    assert stored.state == {"k": "a"}
    assert await session_service.get_user_state(app_name=app_name, user_id=USER) == {}
    # A fresh copy can write again.
    fresh = await get(session_service, app_name, "s")
    await session_service.append_event(fresh, event())
    assert len((await get(session_service, app_name, "s")).events) == 2


async def test_a_copy_of_a_deleted_and_recreated_session_is_stale(session_service, app_name):
    old = await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")
    await session_service.delete_session(app_name=app_name, user_id=USER, session_id="s")
    await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")

    with pytest.raises(StaleSessionError):
        await session_service.append_event(old, event(state={"k": 1}))

    stored = await get(session_service, app_name, "s")
    assert (stored.events, stored.state) == ([], {})


async def test_a_hand_built_session_matching_the_log_can_append(session_service, app_name):
    await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")
    first, second, third = event(state={"k": 1}), event(state={"k": 2}), event(state={"k": 3})

    empty = Session(id="s", app_name=app_name, user_id=USER)
    await session_service.append_event(empty, first)
    stored_first = (await get(session_service, app_name, "s")).events[0]
    by_hand = Session(id="s", app_name=app_name, user_id=USER, events=[stored_first])
    await session_service.append_event(by_hand, second)
    await session_service.append_event(by_hand, third)

    stored = await get(session_service, app_name, "s")
    assert ids(stored.events) == [first.id, second.id, third.id]
    assert stored.state == {"k": 3}
    assert ids(by_hand.events) == ids(stored.events)


async def test_a_hand_built_session_behind_the_log_is_stale(session_service, app_name):
    s = await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")
    first = event(state={"k": 1})
    await session_service.append_event(s, first)

    for events in ([], [event()]):
        behind = Session(id="s", app_name=app_name, user_id=USER, events=events)
        with pytest.raises(StaleSessionError):
            await session_service.append_event(behind, event(state={"k": 2}))

    stored = await get(session_service, app_name, "s")
    assert (ids(stored.events), stored.state) == ([first.id], {"k": 1})


async def test_the_same_event_appended_twice_is_stored_once(session_service, app_name):
    s = await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")
    e1 = event(state={"k": 1, "user:u": 1})
    e2 = event(state={"k": 2, "user:u": 2})
    await session_service.append_event(s, e1)
    await session_service.append_event(s, e2)

    # Re-applying e1's delta would turn k and user:u back to 1.
    assert await session_service.append_event(s, e1) is e1
    await session_service.append_event(s, e2)

    stored = await get(session_service, app_name, "s")
    assert ids(stored.events) == [e1.id, e2.id]
    assert stored.state == {"k": 2, "user:u": 2}
    assert stored.last_update_time == e2.timestamp
    assert ids(s.events) == [e1.id, e2.id]
    assert s.state == {"k": 2, "user:u": 2}
    # The copy is still current: it can go on appending.
    e3 = event(state={"k": 3})
    await session_service.append_event(s, e3)
    assert ids((await get(session_service, app_name, "s")).events) == [e1.id, e2.id, e3.id]


async def test_a_retry_from_a_fresh_copy_after_success_is_a_noop(session_service, app_name):
    s = await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")
    e1 = event(state={"k": 1})
    e2 = event(state={"k": 2})
    await session_service.append_event(s, e1)
    await session_service.append_event(s, e2)
    fresh = await get(session_service, app_name, "s")

    for e in (e2, e1):
        await session_service.append_event(fresh, e)

    assert (ids(fresh.events), fresh.state) == ([e1.id, e2.id], {"k": 2})
    stored = await get(session_service, app_name, "s")
    assert (ids(stored.events), stored.state) == ([e1.id, e2.id], {"k": 2})


async def test_a_retry_after_a_lost_reply_is_applied_once(session_service, app_name):
    await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")
    caller = await get(session_service, app_name, "s")
    e1 = event(state={"k": 1})
    # The first attempt reached storage but its reply was lost: the caller's copy never saw it.
    await session_service.append_event(await get(session_service, app_name, "s"), e1)

    await session_service.append_event(caller, e1)

    assert (ids(caller.events), caller.state) == ([e1.id], {"k": 1})
    e2 = event(state={"k": 2})
    await session_service.append_event(caller, e2)
    stored = await get(session_service, app_name, "s")
    assert (ids(stored.events), stored.state) == ([e1.id, e2.id], {"k": 2})


async def test_a_retry_after_a_lost_reply_does_not_hide_another_writer(session_service, app_name):
    await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")
    caller = await get(session_service, app_name, "s")
    e1 = event(state={"k": 1})
    await session_service.append_event(await get(session_service, app_name, "s"), e1)
    other = event(state={"k": "other"})
    await session_service.append_event(await get(session_service, app_name, "s"), other)

    await session_service.append_event(caller, e1)  # the retry itself succeeds...

    with pytest.raises(StaleSessionError):  # ...but the copy never saw `other`.
        await session_service.append_event(caller, event(state={"k": 2}))
    stored = await get(session_service, app_name, "s")
    assert (ids(stored.events), stored.state) == ([e1.id, other.id], {"k": "other"})


async def test_a_retry_after_a_lost_reply_from_a_hand_built_session(session_service, app_name):
    await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")
    caller = Session(id="s", app_name=app_name, user_id=USER)
    e1 = event(state={"k": 1})
    await session_service.append_event(Session(id="s", app_name=app_name, user_id=USER), e1)

    await session_service.append_event(caller, e1)

    stored = await get(session_service, app_name, "s")
    assert (ids(stored.events), stored.state) == ([e1.id], {"k": 1})
    assert ids(caller.events) == [e1.id]


# --- validation ------------------------------------------------------------------------

BAD_IDS = [
    pytest.param("", id="empty"),
    pytest.param("a\nb", id="newline"),
    pytest.param("a\rb", id="carriage-return"),
    pytest.param("a\tb", id="tab"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\x1bb", id="escape"),
    pytest.param("a\x7fb", id="del"),
    pytest.param("x" * 129, id="too-long"),
    pytest.param("\ud800", id="lone-surrogate"),
]


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_invalid_user_ids_are_refused(session_service, app_name, bad):
    with pytest.raises(InvalidIdError):
        await session_service.create_session(
            app_name=app_name, user_id=bad, session_id="s", state={"user:u": 1, "app:a": 1}
        )

    assert (await session_service.list_sessions(app_name=app_name)).sessions == []
    s = await session_service.create_session(app_name=app_name, user_id=USER)
    assert s.state == {}


# An empty session id asks for a generated one, as in ADK; "a\nb" style ids are refused.
@pytest.mark.parametrize("bad", [p for p in BAD_IDS if p.values[0]])
async def test_invalid_session_ids_are_refused(session_service, app_name, bad):
    with pytest.raises(InvalidIdError):
        await session_service.create_session(
            app_name=app_name, user_id=USER, session_id=bad, state={"user:u": 1}
        )

    assert (await session_service.list_sessions(app_name=app_name)).sessions == []
    assert await session_service.get_user_state(app_name=app_name, user_id=USER) == {}


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_invalid_app_names_are_refused(session_service, bad):
    with pytest.raises(InvalidIdError):
        await session_service.create_session(app_name=bad, user_id=USER, session_id="s")
    with pytest.raises(InvalidIdError):
        await session_service.list_sessions(app_name=bad)


@pytest.mark.parametrize("bad", ["", " u", "u ", "u\n", "x" * 129])
async def test_every_operation_refuses_an_invalid_id(session_service, app_name, bad):
    s = await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")
    with pytest.raises(InvalidIdError):
        await session_service.get_session(app_name=app_name, user_id=bad, session_id="s")
    with pytest.raises(InvalidIdError):
        await session_service.list_sessions(app_name=app_name, user_id=bad)
    with pytest.raises(InvalidIdError):
        await session_service.delete_session(app_name=app_name, user_id=bad, session_id="s")
    with pytest.raises(InvalidIdError):
        await session_service.get_user_state(app_name=app_name, user_id=bad)
    forged = Session(id="s", app_name=app_name, user_id=bad)
    with pytest.raises(InvalidIdError):
        await session_service.append_event(forged, event(state={"user:u": 1}))

    stored = await get(session_service, app_name, "s")
    assert (stored.events, stored.state) == ([], {})
    assert s.events == []


async def test_ids_at_the_length_limit_are_accepted(session_service, unique):
    app = unique.track(unique().ljust(128, "a"))
    user, sid = "u" * 128, "🙂" * 128  # the limit counts characters, not bytes

    s = await session_service.create_session(app_name=app, user_id=user, session_id=sid)
    await session_service.append_event(s, event(state={"user:k": 1}))

    stored = await get(session_service, app, sid, user)
    assert (stored.app_name, stored.user_id, stored.id) == (app, user, sid)
    assert stored.state == {"user:k": 1}
    assert len(stored.events) == 1
    listed = await session_service.list_sessions(app_name=app, user_id=user)
    assert [(x.user_id, x.id) for x in listed.sessions] == [(user, sid)]


class _Opaque:
    pass


NOT_JSON = [
    pytest.param(math.nan, id="nan"),
    pytest.param(math.inf, id="infinity"),
    pytest.param(-math.inf, id="minus-infinity"),
    pytest.param({1, 2}, id="set"),
    pytest.param(_Opaque(), id="object"),
    pytest.param({"nested": [1.0, math.nan]}, id="nested-nan"),
    pytest.param(b"bytes", id="bytes"),
    pytest.param("\udc80", id="lone-surrogate"),
    pytest.param((1, 2), id="tuple"),
    pytest.param({1: "int key"}, id="int-key"),
]


@pytest.mark.parametrize("value", NOT_JSON)
@pytest.mark.parametrize("key", ["k", "app:k", "user:k"])
async def test_state_that_is_not_json_is_refused_at_create(session_service, app_name, key, value):
    with pytest.raises(InvalidStateError):
        await session_service.create_session(
            app_name=app_name, user_id=USER, session_id="s", state={"ok": 1, "app:ok": 1, key: value}
        )

    assert await get(session_service, app_name, "s") is None
    assert await session_service.get_user_state(app_name=app_name, user_id=USER) == {}
    other = await session_service.create_session(app_name=app_name, user_id=USER, session_id="t")
    assert other.state == {}  # app:ok was not applied


@pytest.mark.parametrize("value", NOT_JSON)
@pytest.mark.parametrize("key", ["k", "app:k", "user:k"])
async def test_state_delta_that_is_not_json_is_refused(session_service, app_name, key, value):
    s = await session_service.create_session(
        app_name=app_name, user_id=USER, session_id="s", state={"k": 0}
    )
    bad = event(state={"ok": 1, "app:ok": 1, "user:ok": 1, key: value})

    with pytest.raises(InvalidStateError):
        await session_service.append_event(s, bad)

    assert (s.events, s.state) == ([], {"k": 0})
    stored = await get(session_service, app_name, "s")
    assert (stored.events, stored.state) == ([], {"k": 0})
    assert await session_service.get_user_state(app_name=app_name, user_id=USER) == {}
    # The copy is still current.
    await session_service.append_event(s, event(state={"k": 1}))
    assert (await get(session_service, app_name, "s")).state == {"k": 1}


async def test_an_oversize_event_is_refused(open_service, app_name):
    service = await open_service(session={"max_event_bytes": 1024})
    s = await service.create_session(app_name=app_name, user_id=USER, session_id="s")

    with pytest.raises(EventTooLargeError):
        await service.append_event(s, event(text="x" * 1100, state={"k": 1, "app:a": 1}))

    stored = await get(service, app_name, "s")
    assert (stored.events, stored.state) == ([], {})
    fits = event(text="x" * 500, state={"k": 1})
    await service.append_event(s, fits)
    assert ids((await get(service, app_name, "s")).events) == [fits.id]


async def test_a_refused_event_leaves_the_copy_untouched(open_service, app_name):
    service = await open_service(session={"max_event_bytes": 1024})
    s = await service.create_session(app_name=app_name, user_id=USER, session_id="s")
    big = event(text="x" * 1100, state={"temp:t": 1, "k": 1})
    with pytest.raises(EventTooLargeError):
        await service.append_event(s, big)
    assert s.state == {} and s.events == []
    assert big.actions.state_delta == {"temp:t": 1, "k": 1}  # not trimmed either


async def test_an_event_that_does_not_serialize_is_refused(session_service, app_name):
    s = await session_service.create_session(app_name=app_name, user_id=USER, session_id="s")
    with pytest.raises(InvalidEventError):
        await session_service.append_event(s, event(text="\udc80 lone surrogate", state={"temp:t": 1}))
    assert s.state == {} and s.events == []
    assert (await get(session_service, app_name, "s")).events == []


async def test_temp_state_does_not_count_towards_the_event_size(open_service, app_name):
    service = await open_service(session={"max_event_bytes": 1024})
    s = await service.create_session(app_name=app_name, user_id=USER, session_id="s")
    e = event(state={"temp:big": "x" * 4000, "k": 1})

    await service.append_event(s, e)

    assert s.state["temp:big"] == "x" * 4000
    assert (await get(service, app_name, "s")).state == {"k": 1}


async def test_an_oversize_state_value_is_refused(open_service, app_name):
    service = await open_service(session={"max_state_value_bytes": 64})

    with pytest.raises(StateTooLargeError):
        await service.create_session(
            app_name=app_name, user_id=USER, session_id="s", state={"user:k": "x" * 100}
        )
    assert await get(service, app_name, "s") is None
    s = await service.create_session(app_name=app_name, user_id=USER, session_id="s")
    with pytest.raises(StateTooLargeError):
        await service.append_event(s, event(state={"app:k": ["x" * 30, "y" * 30]}))

    stored = await get(service, app_name, "s")
    assert (stored.events, stored.state) == ([], {})
    await service.append_event(s, event(state={"k": "x" * 40}))
    assert (await get(service, app_name, "s")).state == {"k": "x" * 40}


# --- ids with separators and Unicode ---------------------------------------------------

SEPARATORS = [":", "/", "|", "#", ",", ".", "-", "_", "{", "}", "\\", "%", "*", " "]


@pytest.mark.parametrize("sep", SEPARATORS)
async def test_user_and_session_ids_with_separators_never_collide(session_service, app_name, sep):
    pairs = [
        (f"a{sep}b", "c"),
        ("a", f"b{sep}c"),
        ("a", f"b{sep}{sep}c"),
        (f"a{sep}", "b"),
        ("a", f"{sep}b"),
        (f"a{sep}b{sep}c", "d"),
    ]
    pairs = [(u, s) for u, s in pairs if u.strip() == u and s.strip() == s]
    for n, (user, sid) in enumerate(pairs):
        s = await session_service.create_session(
            app_name=app_name, user_id=user, session_id=sid, state={"n": n, f"user:s{n}": n}
        )
        await session_service.append_event(s, event(text=f"{n}"))

    def of(user):
        return [(n, sid) for n, (u, sid) in enumerate(pairs) if u == user]

    for n, (user, sid) in enumerate(pairs):
        user_state = {f"s{m}": m for m, _ in of(user)}
        got = await get(session_service, app_name, sid, user)
        assert got.state == {"n": n, **{f"user:{k}": v for k, v in user_state.items()}}
        assert [e.content.parts[0].text for e in got.events] == [f"{n}"]
        assert await session_service.get_user_state(app_name=app_name, user_id=user) == user_state
        listed = await session_service.list_sessions(app_name=app_name, user_id=user)
        assert sorted(x.id for x in listed.sessions) == sorted(sid for _, sid in of(user))

    user, sid = pairs[0]
    await session_service.delete_session(app_name=app_name, user_id=user, session_id=sid)
    assert await get(session_service, app_name, sid, user) is None
    for user, sid in pairs[1:]:
        assert (await get(session_service, app_name, sid, user)) is not None


@pytest.mark.parametrize("sep", [":", "/", "|", "{", "}", " "])
async def test_app_names_with_separators_never_collide(session_service, unique, sep):
    base = unique()
    combos = [(unique.track(f"{base}{sep}x"), "y"), (base, f"x{sep}y")]
    for n, (app, user) in enumerate(combos):
        await session_service.create_session(
            app_name=app, user_id=user, session_id="s", state={"app:n": n, "user:n": n, "n": n}
        )

    for n, (app, user) in enumerate(combos):
        got = await get(session_service, app, "s", user)
        assert got.state == {"app:n": n, "user:n": n, "n": n}
        assert await session_service.get_user_state(app_name=app, user_id=user) == {"n": n}
        listed = await session_service.list_sessions(app_name=app)
        assert [(x.user_id, x.id) for x in listed.sessions] == [(user, "s")]


UNICODE_IDS = ["é", "日本語", "🙂", "Ωμέγα", "עברית", "x\u200by", "ß", "İ", "e\u0301"]


@pytest.mark.parametrize("text", UNICODE_IDS)
async def test_unicode_ids_round_trip(session_service, unique, text):
    app = unique(text)
    s = await session_service.create_session(
        app_name=app, user_id=text, session_id=text, state={"user:k": text}
    )
    await session_service.append_event(s, event(text=text))

    got = await get(session_service, app, text, text)
    assert (got.app_name, got.user_id, got.id) == (app, text, text)
    assert got.events[0].content.parts[0].text == text
    assert await session_service.get_user_state(app_name=app, user_id=text) == {"k": text}
    listed = await session_service.list_sessions(app_name=app, user_id=text)
    assert [(x.user_id, x.id) for x in listed.sessions] == [(text, text)]


async def test_ids_that_a_collation_would_equate_stay_distinct(session_service, app_name):
    nfc = unicodedata.normalize("NFC", "é")
    nfd = unicodedata.normalize("NFD", "é")
    variants = ["a", "A", "á", nfc, nfd, "ss", "ß", "ａ", "a\u200b"]
    assert len(set(variants)) == len(variants)
    for n, v in enumerate(variants):
        await session_service.create_session(
            app_name=app_name, user_id=v, session_id=v, state={"n": n, "user:n": n}
        )

    for n, v in enumerate(variants):
        assert (await get(session_service, app_name, v, v)).state == {"n": n, "user:n": n}
        assert await session_service.get_user_state(app_name=app_name, user_id=v) == {"n": n}
    listed = await session_service.list_sessions(app_name=app_name)
    assert sorted((x.user_id, x.id) for x in listed.sessions) == sorted((v, v) for v in variants)

