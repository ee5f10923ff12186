"""The MySQL store end to end, through ifriend's ADK `SessionService`."""

from __future__ import annotations

import asyncio

import time
from typing import Any

import pytest
from google.adk.errors._stale_session_error import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event, EventActions
from google.adk.sessions.base_session_service import GetSessionConfig

from ifriend import App, Settings
from ifriend.sessions import (
    AppendOutcome,
    Revision,
    SessionKey,
    SessionLimits,
    SessionService,
    filter_events,
)

from .helpers import query, record

TRICKY_KEYS = [
    'quo"te',
    "back\\slash",
    'both\\"',
    "dot.ted",
    "sp ace",
    "$",
    "*",
    "[0]",
    "ünïcödé",
    "😀",
    "汉字",
    "new\nline",
    "tab\t",
    "single'quote",
    "a.b[1].c",
]


def event(delta: dict[str, Any] | None = None, **kwargs: Any) -> Event:
    return Event(
        author="user", invocation_id="inv", actions=EventActions(state_delta=delta or {}), **kwargs
    )


async def test_create_get_append_list_delete(service: SessionService, app_name: str) -> None:
    session = await service.create_session(
        app_name=app_name, user_id="u1", state={"k": 1, "app:a": "A", "user:u": [1]}
    )
    assert session.state == {"k": 1, "app:a": "A", "user:u": [1]}
    for i in range(3):
        await service.append_event(session, event({"k": i, "user:seen": i}))
    got = await service.get_session(app_name=app_name, user_id="u1", session_id=session.id)
    assert got is not None
    assert [e.id for e in got.events] == [e.id for e in session.events]
    assert got.state == {"k": 2, "app:a": "A", "user:u": [1], "user:seen": 2}
    assert got.last_update_time == pytest.approx(session.events[-1].timestamp)
    assert got.events == session.events

    other = await service.create_session(app_name=app_name, user_id="u2", session_id="s2")
    listed = await service.list_sessions(app_name=app_name)
    assert [(s.user_id, s.id) for s in listed.sessions] == [("u1", session.id), ("u2", "s2")]
    assert all(not s.events for s in listed.sessions)
    assert listed.sessions[0].state == got.state
    assert listed.sessions[1].state == {"app:a": "A"}
    only = await service.list_sessions(app_name=app_name, user_id="u2")
    assert [s.id for s in only.sessions] == [other.id]

    assert await service.get_user_state(app_name=app_name, user_id="u1") == {
        "u": [1],
        "seen": 2,
    }
    await service.delete_session(app_name=app_name, user_id="u1", session_id=session.id)
    assert await service.get_session(app_name=app_name, user_id="u1", session_id=session.id) is None
    await service.delete_session(app_name=app_name, user_id="u1", session_id=session.id)  # no-op
    # user and app state outlive the session, as in ADK
    assert await service.get_user_state(app_name=app_name, user_id="u1") == {"u": [1], "seen": 2}
    rows = await query(
        service.store.settings.url.get_secret_value(),
        f"SELECT COUNT(*) FROM {service.store.tables.events} e LEFT JOIN "
        f"{service.store.tables.sessions} s ON s.pk = e.session_pk WHERE s.pk IS NULL",
    )
    assert rows == [(0,)]  # no orphaned events


async def test_list_orders_by_last_update(service: SessionService, app_name: str) -> None:
    first = await service.create_session(app_name=app_name, user_id="u", session_id="first")
    await service.create_session(app_name=app_name, user_id="u", session_id="second")
    await service.append_event(first, event({"x": 1}, timestamp=time.time() + 10))
    listed = await service.list_sessions(app_name=app_name, user_id="u")
    assert [s.id for s in listed.sessions] == ["second", "first"]


async def test_duplicate_create_is_already_exists(service: SessionService, app_name: str) -> None:
    await service.create_session(app_name=app_name, user_id="u", session_id="s", state={"a": 1})
    with pytest.raises(AlreadyExistsError):
        await service.create_session(
            app_name=app_name, user_id="u", session_id="s", state={"app:leak": 1}
        )
    # the failed create's app delta was rolled back with it
    got = await service.get_session(app_name=app_name, user_id="u", session_id="s")
    assert got is not None and got.state == {"a": 1}


async def test_stale_copy_is_refused_and_writes_nothing(
    service: SessionService, app_name: str
) -> None:
    session = await service.create_session(app_name=app_name, user_id="u", session_id="s")
    copy = await service.get_session(app_name=app_name, user_id="u", session_id="s")
    assert copy is not None
    await service.append_event(session, event({"winner": True}))
    with pytest.raises(StaleSessionError):
        await service.append_event(copy, event({"loser": True, "user:loser": True}))
    got = await service.get_session(app_name=app_name, user_id="u", session_id="s")
    assert got is not None and len(got.events) == 1 and got.state == {"winner": True}
    assert await service.get_user_state(app_name=app_name, user_id="u") == {}


async def test_append_to_a_missing_session(service: SessionService, app_name: str) -> None:
    session = await service.create_session(app_name=app_name, user_id="u", session_id="s")
    await service.delete_session(app_name=app_name, user_id="u", session_id="s")
    with pytest.raises(SessionNotFoundError):
        await service.append_event(session, event())


async def test_recreated_session_does_not_accept_the_old_copy(
    service: SessionService, app_name: str
) -> None:
    old = await service.create_session(app_name=app_name, user_id="u", session_id="s")
    await service.delete_session(app_name=app_name, user_id="u", session_id="s")
    await service.create_session(app_name=app_name, user_id="u", session_id="s")
    with pytest.raises(StaleSessionError):  # same version 0, other incarnation
        await service.append_event(old, event())


async def test_reappending_the_same_event_is_applied_once(
    service: SessionService, app_name: str
) -> None:
    session = await service.create_session(app_name=app_name, user_id="u", session_id="s")
    e = event({"n": 1})
    await service.append_event(session, e)
    await service.append_event(session, e)
    got = await service.get_session(app_name=app_name, user_id="u", session_id="s")
    assert got is not None and [x.id for x in got.events] == [e.id]


async def test_get_session_config_matches_filter_events(
    service: SessionService, app_name: str
) -> None:
    session = await service.create_session(app_name=app_name, user_id="u", session_id="s")
    # timestamps are not monotonic on purpose: the filter keeps a suffix, not a set
    stamps = [100.0, 101.0, 99.0, 103.0, 104.0, 102.5, 105.0, 106.0]
    for ts in stamps:
        await service.append_event(session, event(timestamp=ts))
    stored = session.events
    for n in (None, 0, 1, 3, 8, 20):
        for after in (None, 0.0, 99.5, 102.0, 102.6, 103.0, 106.0, 200.0):
            config = GetSessionConfig(num_recent_events=n, after_timestamp=after)
            got = await service.get_session(
                app_name=app_name, user_id="u", session_id="s", config=config
            )
            assert got is not None
            expected = filter_events(stored, n, after)
            assert [e.id for e in got.events] == [e.id for e in expected], (n, after)


async def test_load_hands_raw_payloads_and_scope_versions(store: Any, app_name: str) -> None:
    key = SessionKey(app_name, "u", "s")
    created = await store.create(
        key, incarnation="inc", state={"a": 1}, app_delta={"x": 1}, user_delta={}, created_at=1.0
    )
    assert (created.app_state, created.app_state_version) == ({"x": 1}, 1)
    assert (created.user_state, created.user_state_version) == ({}, 0)
    first = record(state={"b": 2}, user={"y": None})
    result = await store.append(key, first, expected=Revision("inc", 0))
    assert result.outcome is AppendOutcome.APPLIED
    assert (result.app_state_version, result.user_state_version) == (None, 1)
    second = record(app={"x": 2}, user={"y": 3})
    result = await store.append(key, second, expected=Revision("inc", 1))
    assert (result.app_state_version, result.user_state_version) == (2, 2)
    assert result.revision == Revision("inc", 2)
    loaded = await store.load(key)
    assert loaded.payloads == [first.payload, second.payload]
    assert [e.id for e in loaded.events] == [first.event_id, second.event_id]
    assert (loaded.app_state_version, loaded.user_state_version) == (2, 2)
    assert (loaded.state, loaded.app_state, loaded.user_state) == (
        {"a": 1, "b": 2},
        {"x": 2},
        {"y": 3},
    )
    tail = await store.load(key, num_recent_events=1)
    assert tail.payloads == [second.payload] and tail.revision == Revision("inc", 2)


async def test_utf8mb4_round_trip(service: SessionService, app_name: str) -> None:
    app = app_name + "-😀汉字"
    user, sid = "ユーザー🙂", "セッション-𝄞"
    text = "emoji 😀🎉, CJK 汉字かな한국어, math 𝄞 ∑, rtl שלום"
    session = await service.create_session(
        app_name=app, user_id=user, session_id=sid, state={"t": text, "user:t": text}
    )
    await service.append_event(
        session, event({"t2": text}, content={"role": "user", "parts": [{"text": text}]})
    )
    got = await service.get_session(app_name=app, user_id=user, session_id=sid)
    assert got is not None
    assert got.state == {"t": text, "t2": text, "user:t": text}
    assert got.events[0].content.parts[0].text == text
    listed = await service.list_sessions(app_name=app)
    assert [(s.user_id, s.id) for s in listed.sessions] == [(user, sid)]
    await service.delete_session(app_name=app, user_id=user, session_id=sid)


async def test_ids_are_compared_byte_for_byte(service: SessionService, app_name: str) -> None:
    # Case, accents and normalization forms: all distinct sessions (a _ci or
    # PAD SPACE collation would merge some of them).
    ids = ["abc", "ABC", "Abc", "é", "e\u0301", "ß", "ss", "a b", "a  b"]
    for sid in ids:
        await service.create_session(
            app_name=app_name, user_id="u", session_id=sid, state={"id": sid}
        )
    for sid in ids:
        got = await service.get_session(app_name=app_name, user_id="u", session_id=sid)
        assert got is not None and got.state == {"id": sid}
    listed = await service.list_sessions(app_name=app_name, user_id="u")
    assert sorted(s.id for s in listed.sessions) == sorted(ids)
    assert await service.get_session(app_name=app_name, user_id="U", session_id="abc") is None
    assert await service.list_sessions(app_name=app_name.upper()) is not None
    assert (await service.list_sessions(app_name=app_name.upper())).sessions == []


async def test_trailing_space_in_stored_bytes_is_not_ignored(store: Any, app_name: str) -> None:
    # The service refuses ids with surrounding whitespace; the store must not
    # confuse them anyway (VARBINARY compares bytes; PAD SPACE would not).
    await store.create(
        SessionKey(app_name, "u", "s "),
        incarnation="i",
        state={},
        app_delta={},
        user_delta={},
        created_at=1.0,
    )
    assert await store.load(SessionKey(app_name, "u", "s")) is None
    await store.create(
        SessionKey(app_name, "u", "s"),
        incarnation="j",
        state={},
        app_delta={},
        user_delta={},
        created_at=1.0,
    )
    assert (await store.load(SessionKey(app_name, "u", "s "))).revision.incarnation == "i"
    assert (await store.load(SessionKey(app_name, "u", "s"))).revision.incarnation == "j"


async def test_state_keys_with_quotes_dots_and_unicode(
    service: SessionService, app_name: str
) -> None:
    initial = {k: f"initial {k}" for k in TRICKY_KEYS[:5]}
    session = await service.create_session(
        app_name=app_name, user_id="u", session_id="s", state=initial
    )
    delta = {k: {"value": k, "n": i} for i, k in enumerate(TRICKY_KEYS)}
    app_delta = {f"app:{k}": i for i, k in enumerate(TRICKY_KEYS)}
    user_delta = {f"user:{k}": [k] for k in TRICKY_KEYS}
    await service.append_event(session, event({**delta, **app_delta, **user_delta}))
    await service.append_event(session, event({TRICKY_KEYS[0]: "again"}))
    got = await service.get_session(app_name=app_name, user_id="u", session_id="s")
    assert got is not None
    expected = {**initial, **delta, TRICKY_KEYS[0]: "again", **app_delta, **user_delta}
    assert got.state == expected
    assert got.state == session.state


async def test_null_values_are_stored_as_null_not_removed(
    service: SessionService, app_name: str
) -> None:
    session = await service.create_session(
        app_name=app_name, user_id="u", session_id="s", state={"a": 1, "b": {"c": 2}}
    )
    await service.append_event(
        session, event({"a": None, "new": None, "app:n": None, "user:n": None})
    )
    await service.append_event(session, event({"b": None, "app:n": None}))
    got = await service.get_session(app_name=app_name, user_id="u", session_id="s")
    assert got is not None
    assert got.state == {"a": None, "b": None, "new": None, "app:n": None, "user:n": None}
    assert await service.get_user_state(app_name=app_name, user_id="u") == {"n": None}


async def test_json_values_of_every_kind_round_trip(service: SessionService, app_name: str) -> None:
    values = {
        "int": 12345678901234567890,
        "neg": -7,
        "float": 0.1,
        "exp": 1e300,
        "true": True,
        "false": False,
        "str_null": "null",
        "str_json": '{"not": "an object"}',
        "empty_obj": {},
        "empty_list": [],
        "nested": {"a": [1, {"b": None}, "😀"], 'k.e"y': "\\"},
    }
    session = await service.create_session(app_name=app_name, user_id="u", session_id="s")
    await service.append_event(session, event(values))
    got = await service.get_session(app_name=app_name, user_id="u", session_id="s")
    assert got is not None and got.state == values


async def test_temp_state_is_not_stored(service: SessionService, app_name: str) -> None:
    session = await service.create_session(app_name=app_name, user_id="u", session_id="s")
    await service.append_event(session, event({"temp:scratch": 1, "kept": 2}))
    got = await service.get_session(app_name=app_name, user_id="u", session_id="s")
    assert got is not None and got.state == {"kept": 2}


async def test_the_longest_ids_fit(store: Any, app_name: str) -> None:
    limits = SessionLimits(max_id_length=255)
    service = SessionService(store, limits=limits)
    app = (app_name + "😀" * 255)[:255]
    user, sid, eid = "𝄞" * 255, "汉" * 255, "🎉" * 255
    session = await service.create_session(
        app_name=app, user_id=user, session_id=sid, state={"user:k": 1}
    )
    await service.append_event(session, event({"k": 1}, id=eid))
    got = await service.get_session(app_name=app, user_id=user, session_id=sid)
    assert got is not None and [e.id for e in got.events] == [eid]
    await service.delete_session(app_name=app, user_id=user, session_id=sid)


async def test_the_app_builds_connects_and_closes_the_backend(
    mysql_url: str, table_prefix: str, app_name: str
) -> None:
    settings = Settings.model_validate(
        {
            "session": {"backend": "mysql"},
            "backends": {"mysql": {"url": mysql_url, "table_prefix": table_prefix}},
        }
    )
    async with App(settings) as app:
        service = app.session_service
        session = await service.create_session(app_name=app_name, user_id="u", state={"a": 1})
        await service.append_event(session, event({"b": 2}))
        got = await service.get_session(app_name=app_name, user_id="u", session_id=session.id)
        assert got is not None and got.state == {"a": 1, "b": 2}
        store = service.store
    assert store._pool is None  # closed with the App


async def test_the_repair_queue(store: Any, app_name: str) -> None:
    async def pending(limit: int = 100) -> list[tuple[int, SessionKey]]:
        return [p for p in (await store.redis_trust(limit))[1] if p[1].app_name == app_name]

    keys = [SessionKey(app_name, "u", f"s{i}") for i in range(3)]
    for key in keys:
        await store.mark_for_repair(key)
    await store.mark_for_repair(keys[0])  # marking twice is harmless
    marked = await pending()
    assert [key for _, key in marked] == [*keys, keys[0]]
    assert [key for _, key in await pending(2)] == keys[:2]  # oldest first
    await store.clear_repairs([repair_id for repair_id, _ in marked[:2]])
    assert [key for _, key in await pending()] == [keys[2], keys[0]]
    await store.clear_repairs([repair_id for repair_id, _ in marked])
    await store.clear_repairs([])
    assert not await pending()


async def test_outage_rows_live_on_mysqls_clock_while_extended(store: Any, app_name: str) -> None:
    replica = f"r-{app_name}"[:64]
    before = (await store.redis_trust(1))[0]
    assert not await store.extend_outage(replica, 5)  # no row yet
    await store.begin_outage(replica, 0.3)
    assert (await store.redis_trust(1))[0] == before + 1
    assert await store.extend_outage(replica, 0.3)
    assert await store.mark_for_repair(
        SessionKey(app_name, "u", "s"), outage=replica, outage_seconds=0.3
    )
    await asyncio.sleep(0.5)
    assert (await store.redis_trust(1))[0] == before  # expired
    assert not await store.extend_outage(replica, 5)  # too late: it must begin again
    assert not await store.mark_for_repair(
        SessionKey(app_name, "u", "s"), outage=replica, outage_seconds=5
    )
    await store.begin_outage(replica, 5)
    assert (await store.redis_trust(1))[0] == before + 1
    await store.end_outage(replica)
    assert (await store.redis_trust(1))[0] == before
    await store.clear_repairs([pk for pk, k in (await store.redis_trust(100))[1] if k.app_name == app_name])
