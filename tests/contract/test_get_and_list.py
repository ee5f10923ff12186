"""Reading sessions back: an unknown session is None, a returned session is a copy, lists
are per user or app, ordered by last update, without events and with the merged state.

One behaviour per test, for every backend of the contract suite (`backends.SUITE`); the
reference is `google.adk.sessions.InMemorySessionService` (see `helpers.py` for where
ifriend differs).
"""

from __future__ import annotations

import time

from .helpers import USER, event, get


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
