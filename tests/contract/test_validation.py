"""Validation before any write: bad ids, state that is not JSON, oversize events and state
values are refused with typed errors.

One behaviour per test, for every backend of the contract suite (`backends.SUITE`); the
reference is `google.adk.sessions.InMemorySessionService` (see `helpers.py` for where
ifriend differs).
"""

from __future__ import annotations

import math

import pytest
from google.adk.sessions.session import Session

from ifriend.errors import (
    EventTooLargeError,
    InvalidEventError,
    InvalidIdError,
    InvalidStateError,
    StateTooLargeError,
)

from .helpers import USER, event, get, ids


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
