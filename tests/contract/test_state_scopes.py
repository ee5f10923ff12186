"""State scopes: `app:`, `user:` and session state set at create or by events, later writes
winning, `temp:` never persisted, `get_user_state`.

One behaviour per test, for every backend of the contract suite (`backends.SUITE`); the
reference is `google.adk.sessions.InMemorySessionService` (see `helpers.py` for where
ifriend differs).
"""

from __future__ import annotations

import time

from .helpers import USER, event, get, ids


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
