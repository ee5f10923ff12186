"""`GetSessionConfig`: `num_recent_events` and `after_timestamp`, alone and combined, as ADK's
in-memory service answers them.

One behaviour per test, for every backend of the contract suite (`backends.SUITE`); the
reference is `google.adk.sessions.InMemorySessionService` (see `helpers.py` for where
ifriend differs).
"""

from __future__ import annotations

import time

import pytest
from google.adk.events.event import Event
from google.adk.sessions import InMemorySessionService

from .helpers import USER, event, get, ids


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
