"""Creating a session: a given or a generated id, a taken id refused with nothing changed,
ids distinct per user and app, a deleted id created again.

One behaviour per test, for every backend of the contract suite (`backends.SUITE`); the
reference is `google.adk.sessions.InMemorySessionService` (see `helpers.py` for where
ifriend differs).
"""

from __future__ import annotations

import pytest
from google.adk.errors.already_exists_error import AlreadyExistsError

from ifriend.errors import InvalidIdError

from .helpers import USER, event, get


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
    # ADK strips it; ifriend refuses it (docs/sessions.md), rather than store an id other than the one given.
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
