"""The redis store behind ifriend's ADK `SessionService`, end to end on a real redis-server."""

from __future__ import annotations

import time

import pytest
from google.adk.errors._stale_session_error import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event, EventActions
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types

from ifriend.sessions import SessionService


def event(text: str = "hi", *, delta: dict | None = None, ts: float | None = None) -> Event:
    kwargs = {"timestamp": ts} if ts is not None else {}
    return Event(
        author="user",
        invocation_id="inv",
        content=types.Content(role="user", parts=[types.Part(text=text)]),
        actions=EventActions(state_delta=delta or {}),
        **kwargs,
    )


async def test_create_get_append_round_trip_with_state_scopes(service: SessionService):
    s = await service.create_session(
        app_name="app", user_id="u", state={"a": 1, "app:theme": "dark", "user:lang": "fr"}
    )
    assert s.state == {"a": 1, "app:theme": "dark", "user:lang": "fr"}
    await service.append_event(s, event("one", delta={"a": 2, "temp:scratch": 1, "app:n": 1}))
    await service.append_event(s, event("two", delta={"user:lang": "de", "b": [1, {"c": None}]}))
    got = await service.get_session(app_name="app", user_id="u", session_id=s.id)
    assert got is not None
    assert [e.content.parts[0].text for e in got.events] == ["one", "two"]
    assert got.state == {
        "a": 2,
        "b": [1, {"c": None}],
        "app:theme": "dark",
        "app:n": 1,
        "user:lang": "de",
    }
    assert "temp:scratch" not in got.events[0].actions.state_delta
    assert got.last_update_time == pytest.approx(got.events[-1].timestamp)
    assert await service.get_user_state(app_name="app", user_id="u") == {"lang": "de"}
    # app state is shared by the app's other users
    other = await service.create_session(app_name="app", user_id="v")
    assert other.state == {"app:theme": "dark", "app:n": 1}


async def test_get_session_config_filters(service: SessionService):
    s = await service.create_session(app_name="app", user_id="u")
    base = time.time()
    for i in range(5):
        await service.append_event(s, event(str(i), ts=base + i))

    async def texts(**config) -> list[str]:
        got = await service.get_session(
            app_name="app", user_id="u", session_id=s.id, config=GetSessionConfig(**config)
        )
        return [e.content.parts[0].text for e in got.events]

    assert await texts(num_recent_events=2) == ["3", "4"]
    assert await texts(num_recent_events=0) == []
    assert await texts(num_recent_events=50) == ["0", "1", "2", "3", "4"]
    assert await texts(after_timestamp=base + 3) == ["3", "4"]
    assert await texts(num_recent_events=3, after_timestamp=base + 3.5) == ["4"]


async def test_errors_of_the_adk_contract(service: SessionService):
    s = await service.create_session(app_name="app", user_id="u", session_id="fixed")
    with pytest.raises(AlreadyExistsError):
        await service.create_session(app_name="app", user_id="u", session_id="fixed")
    copy = await service.get_session(app_name="app", user_id="u", session_id="fixed")
    await service.append_event(s, event("first writer"))
    with pytest.raises(StaleSessionError):
        await service.append_event(copy, event("stale writer"))
    await service.delete_session(app_name="app", user_id="u", session_id="fixed")
    assert await service.get_session(app_name="app", user_id="u", session_id="fixed") is None
    with pytest.raises(SessionNotFoundError):
        await service.append_event(s, event("after delete"))
    # deleting twice is a no-op; the id can be used again
    await service.delete_session(app_name="app", user_id="u", session_id="fixed")
    await service.create_session(app_name="app", user_id="u", session_id="fixed")


async def test_retried_append_is_applied_once(service: SessionService):
    s = await service.create_session(app_name="app", user_id="u")
    e = event("once")
    await service.append_event(s, e)
    await service.append_event(s, e)
    got = await service.get_session(app_name="app", user_id="u", session_id=s.id)
    assert [x.id for x in got.events] == [e.id]
    assert len(s.events) == 1


async def test_partial_events_are_not_stored(service: SessionService):
    s = await service.create_session(app_name="app", user_id="u")
    partial = event("typing")
    partial.partial = True
    await service.append_event(s, partial)
    got = await service.get_session(app_name="app", user_id="u", session_id=s.id)
    assert got.events == []


async def test_list_sessions_by_user_and_by_app_ordered_by_update(service: SessionService):
    a = await service.create_session(app_name="app", user_id="u1", state={"n": 1})
    b = await service.create_session(app_name="app", user_id="u2")
    c = await service.create_session(app_name="app", user_id="u1")
    await service.append_event(a, event("latest"))
    listed = await service.list_sessions(app_name="app", user_id="u1")
    assert [x.id for x in listed.sessions] == [c.id, a.id]
    assert all(x.events == [] for x in listed.sessions)
    assert listed.sessions[1].state == {"n": 1}
    everyone = await service.list_sessions(app_name="app")
    assert [x.id for x in everyone.sessions] == [b.id, c.id, a.id]
    await service.delete_session(app_name="app", user_id="u2", session_id=b.id)
    assert {x.id for x in (await service.list_sessions(app_name="app")).sessions} == {a.id, c.id}
    assert (await service.list_sessions(app_name="other")).sessions == []


async def test_two_replicas_see_each_others_appends(make_store):
    one = SessionService(await make_store())
    two = SessionService(await make_store())
    s = await one.create_session(app_name="app", user_id="u")
    await one.append_event(s, event("from one"))
    copy = await two.get_session(app_name="app", user_id="u", session_id=s.id)
    await two.append_event(copy, event("from two"))
    got = await one.get_session(app_name="app", user_id="u", session_id=s.id)
    assert [e.content.parts[0].text for e in got.events] == ["from one", "from two"]


async def test_awkward_ids_round_trip(service: SessionService):
    for app, user, sid in [("a:b", "c", "d"), ("a", "b:c", "d"), ("{x}", "*|*", "日本語 id%41")]:
        s = await service.create_session(app_name=app, user_id=user, session_id=sid)
        await service.append_event(s, event(f"{app}/{user}/{sid}"))
    got = await service.get_session(app_name="a", user_id="b:c", session_id="d")
    assert [e.content.parts[0].text for e in got.events] == ["a/b:c/d"]
    listed = await service.list_sessions(app_name="{x}")
    assert [(x.user_id, x.id) for x in listed.sessions] == [("*|*", "日本語 id%41")]
