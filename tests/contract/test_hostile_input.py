"""Clumsy and hostile input to the session service: a typed error before anything is
written, the same on every backend (issue 12's table, the session rows)."""

from __future__ import annotations

import math

import pytest
from google.adk.sessions.base_session_service import GetSessionConfig

from ifriend.errors import InvalidEventError, InvalidIdError, InvalidQueryError, InvalidStateError
from ifriend.sessions.validation import MAX_RECENT_EVENTS, MAX_STATE_DEPTH

from .helpers import USER, event, get, ids

NOT_FINITE = [
    pytest.param(math.nan, id="nan"),
    pytest.param(math.inf, id="inf"),
    pytest.param(-math.inf, id="minus-inf"),
]


def nested(depth: int) -> object:
    """Lists and objects alternately nested `depth` deep around a string."""
    value: object = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


async def session_with_two_events(service, app_name):
    s = await service.create_session(
        app_name=app_name, user_id=USER, session_id="s", state={"k": 0, "user:u": 0}
    )
    first, second = event(text="one", timestamp=10.0), event(text="two", timestamp=20.0)
    await service.append_event(s, first)
    await service.append_event(s, second)
    return s, [first.id, second.id]


async def assert_unchanged(service, app_name, event_ids):
    stored = await get(service, app_name, "s")
    assert ids(stored.events) == event_ids
    assert stored.state == {"k": 0, "user:u": 0}
    assert stored.last_update_time == 20.0
    assert await service.get_user_state(app_name=app_name, user_id=USER) == {"u": 0}


# --- event timestamps -------------------------------------------------------------------


@pytest.mark.parametrize("timestamp", NOT_FINITE)
async def test_an_event_timestamp_that_is_not_finite_is_refused(session_service, app_name, timestamp):
    s, stored_ids = await session_with_two_events(session_service, app_name)
    bad = event(timestamp=timestamp, state={"k": 1, "user:u": 1, "app:a": 1})

    with pytest.raises(InvalidEventError, match="timestamp"):
        await session_service.append_event(s, bad)

    await assert_unchanged(session_service, app_name, stored_ids)
    assert ids(s.events) == stored_ids
    # Reads by time still work, and so does the copy: nothing was half-written.
    assert ids((await get(session_service, app_name, "s", after_timestamp=15.0)).events) == stored_ids[1:]
    await session_service.append_event(s, event(timestamp=30.0))
    assert len((await get(session_service, app_name, "s")).events) == 3


# --- GetSessionConfig -----------------------------------------------------------------


@pytest.mark.parametrize("after", NOT_FINITE)
async def test_an_after_timestamp_that_is_not_finite_is_refused(session_service, app_name, after):
    await session_with_two_events(session_service, app_name)

    with pytest.raises(InvalidQueryError, match="after_timestamp"):
        await get(session_service, app_name, "s", after_timestamp=after)


@pytest.mark.parametrize("n", [-1, 1.5, "2", True])
async def test_a_num_recent_events_that_is_not_a_count_is_refused(session_service, app_name, n):
    await session_with_two_events(session_service, app_name)
    config = GetSessionConfig.model_construct(num_recent_events=n, after_timestamp=None)

    with pytest.raises(InvalidQueryError, match="num_recent_events"):
        await session_service.get_session(app_name=app_name, user_id=USER, session_id="s", config=config)


@pytest.mark.parametrize("n", [MAX_RECENT_EVENTS, MAX_RECENT_EVENTS + 1, 2**63, 10**20])
async def test_a_huge_num_recent_events_reads_every_event(session_service, app_name, n):
    _, stored_ids = await session_with_two_events(session_service, app_name)

    assert ids((await get(session_service, app_name, "s", num_recent_events=n)).events) == stored_ids
    got = await get(session_service, app_name, "s", num_recent_events=n, after_timestamp=15.0)
    assert ids(got.events) == stored_ids[1:]


# --- state depth ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["k", "app:k", "user:k"])
async def test_state_at_the_depth_limit_round_trips(session_service, app_name, key):
    deep = nested(MAX_STATE_DEPTH)
    s = await session_service.create_session(
        app_name=app_name, user_id=USER, session_id="s", state={key: deep}
    )
    await session_service.append_event(s, event(state={key + "2": deep}))

    stored = await get(session_service, app_name, "s")
    assert stored.state == {key: deep, key + "2": deep}
    assert s.state == stored.state


@pytest.mark.parametrize("key", ["k", "app:k", "user:k"])
async def test_state_deeper_than_the_limit_is_refused(session_service, app_name, key):
    too_deep = nested(MAX_STATE_DEPTH + 1)

    with pytest.raises(InvalidStateError, match=f"deeper than {MAX_STATE_DEPTH}"):
        await session_service.create_session(
            app_name=app_name, user_id=USER, session_id="s", state={"app:a": 1, key: too_deep}
        )
    assert await get(session_service, app_name, "s") is None

    s, stored_ids = await session_with_two_events(session_service, app_name)
    with pytest.raises(InvalidStateError, match=f"deeper than {MAX_STATE_DEPTH}"):
        await session_service.append_event(s, event(state={"k": 1, "app:a": 1, key: too_deep}))
    await assert_unchanged(session_service, app_name, stored_ids)
    other = await session_service.create_session(app_name=app_name, user_id=USER, session_id="t")
    assert "app:a" not in other.state


async def test_state_that_contains_itself_is_refused(session_service, app_name):
    loop: list[object] = []
    loop.append(loop)

    with pytest.raises(InvalidStateError):
        await session_service.create_session(
            app_name=app_name, user_id=USER, session_id="s", state={"k": loop}
        )
    assert await get(session_service, app_name, "s") is None


# --- ids and arguments of the wrong type -------------------------------------------------------


@pytest.mark.parametrize("bad", [123, 1.5, b"bytes", ["s"], True])
async def test_ids_that_are_not_strings_are_refused(session_service, app_name, bad):
    with pytest.raises(InvalidIdError, match="must be a string"):
        await session_service.create_session(app_name=app_name, user_id=USER, session_id=bad)
    with pytest.raises(InvalidIdError, match="must be a string"):
        await session_service.create_session(app_name=app_name, user_id=bad, session_id="s")
    with pytest.raises(InvalidIdError, match="must be a string"):
        await session_service.get_session(app_name=app_name, user_id=USER, session_id=bad)
    with pytest.raises(InvalidIdError, match="must be a string"):
        await session_service.delete_session(app_name=app_name, user_id=USER, session_id=bad)
    with pytest.raises(InvalidIdError, match="must be a string"):
        await session_service.list_sessions(app_name=bad)

    assert (await session_service.list_sessions(app_name=app_name)).sessions == []


@pytest.mark.parametrize("bad", [["k", 1], "k=1", 7])
async def test_a_state_that_is_not_a_dict_is_refused(session_service, app_name, bad):
    with pytest.raises(InvalidStateError, match="must be a dict"):
        await session_service.create_session(app_name=app_name, user_id=USER, session_id="s", state=bad)
    assert await get(session_service, app_name, "s") is None


# --- values at the edges of JSON ---------------------------------------------------------------

EDGE_VALUES = [
    pytest.param(2**70, id="int-beyond-64-bits"),
    pytest.param(-(2**63) - 1, id="int-below-int64"),
    pytest.param(2**53 + 1, id="int-beyond-double"),
    pytest.param(1e308, id="huge-float"),
    pytest.param(5e-324, id="subnormal"),
    pytest.param(0.1, id="inexact-float"),
    pytest.param("\u0000\\\"\u2028", id="nul-backslash-quote-separator"),
    pytest.param({"": 1, "a.b": {"$x": [None]}, "é": "🙂"}, id="awkward-keys"),
]


@pytest.mark.parametrize("value", EDGE_VALUES)
@pytest.mark.parametrize("key", ["k", "app:k", "user:k"])
async def test_json_values_at_the_edges_round_trip_exactly(session_service, app_name, key, value):
    s = await session_service.create_session(
        app_name=app_name, user_id=USER, session_id="s", state={key: value}
    )
    await session_service.append_event(s, event(state={key + "2": value}))

    stored = (await get(session_service, app_name, "s")).state
    assert stored == {key: value, key + "2": value}
    assert all(type(v) is type(value) for v in stored.values())
