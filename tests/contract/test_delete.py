"""Deleting a session removes only that one; deleting an unknown one is a no-op.

One behaviour per test, for every backend of the contract suite (`backends.SUITE`); the
reference is `google.adk.sessions.InMemorySessionService` (see `helpers.py` for where
ifriend differs).
"""

from __future__ import annotations

from .helpers import USER, event, get


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
