"""Stale copies and retries: a write from a stale copy raises `StaleSessionError` and writes
nothing; the same event appended again (a retry, a lost reply) is applied once.

One behaviour per test, for every backend of the contract suite (`backends.SUITE`); the
reference is `google.adk.sessions.InMemorySessionService` (see `helpers.py` for where
ifriend differs).
"""

from __future__ import annotations

import pytest
from google.adk.errors._stale_session_error import StaleSessionError
from google.adk.sessions.session import Session

from .helpers import USER, event, get, ids


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
