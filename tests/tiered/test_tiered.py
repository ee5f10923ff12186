"""The tiered store's guarantees, against real Redis and MariaDB."""

from __future__ import annotations

import asyncio
import time
import logging

import pytest
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.genai import types

from ifriend.errors import BackendUnavailableError
from ifriend.sessions import AppendOutcome, SessionKey

from ..captured import last_span

APP, USER = "tiered-app", "u1"


def said(text: str, **state) -> Event:
    return Event(
        author="user",
        content=types.Content(role="user", parts=[types.Part(text=text)]),
        actions=EventActions(state_delta=state),
    )


def texts(session) -> list[str]:
    return [e.content.parts[0].text for e in session.events]


async def get(app, session_id="s1", **kw):
    return await app.session_service.get_session(app_name=APP, user_id=USER, session_id=session_id, **kw)


async def until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def store_of(app):
    return app.session_service.store


async def test_append_is_committed_in_mysql_before_it_returns(make_app):
    app = await make_app()
    session = await app.session_service.create_session(app_name=APP, user_id=USER, session_id="s1")
    await app.session_service.append_event(session, said("hello", **{"user:name": "Ada"}))
    durable = await store_of(app).mysql.load(SessionKey(APP, USER, "s1"))
    assert [e.content.parts[0].text for e in durable.events] == ["hello"]
    assert durable.user_state == {"name": "Ada"}


async def test_mysql_failure_raises_and_no_tier_keeps_the_event(make_app, monkeypatch):
    app = await make_app()
    store = store_of(app)
    session = await app.session_service.create_session(app_name=APP, user_id=USER, session_id="s1")
    await app.session_service.append_event(session, said("kept"))

    async def down(*args, **kwargs):
        raise BackendUnavailableError("MySQL is down")

    monkeypatch.setattr(store.mysql, "append", down)
    with pytest.raises(BackendUnavailableError):
        await app.session_service.append_event(session, said("lost"))
    monkeypatch.undo()
    key = SessionKey(APP, USER, "s1")
    assert texts(await store.mysql.load(key)) == ["kept"]
    in_redis = await store.redis.load(key)
    assert in_redis is None or texts(in_redis) == ["kept"]
    cached = store.cache.get(key)
    assert cached is None or [e.content.parts[0].text for e in cached.events] == ["kept"]
    assert texts(await get(app)) == ["kept"]


async def test_retry_after_a_lost_mysql_reply_is_applied_once(make_app, monkeypatch):
    writer, reader = await make_app(), await make_app()
    store = store_of(writer)
    session = await writer.session_service.create_session(app_name=APP, user_id=USER, session_id="s1")
    await writer.session_service.append_event(session, said("one"))
    assert texts(await get(reader)) == ["one"]  # the reader's LRU now holds version 1
    real_append = store.mysql.append

    async def commit_then_lose_the_reply(*args, **kwargs):
        await real_append(*args, **kwargs)
        raise BackendUnavailableError("connection lost before the reply")

    monkeypatch.setattr(store.mysql, "append", commit_then_lose_the_reply)
    event = said("two")
    with pytest.raises(BackendUnavailableError):
        await writer.session_service.append_event(session, event)
    monkeypatch.undo()
    retried = await writer.session_service.append_event(session, event)
    assert retried.id == event.id
    for app in (writer, reader):
        assert texts(await get(app)) == ["one", "two"]
    assert len((await store.mysql.load(SessionKey(APP, USER, "s1"))).events) == 2


async def test_retry_of_an_event_a_crashed_writer_committed(make_app):
    """The first attempt reached MySQL and its process died before telling Redis."""
    from ifriend.sessions import EventRecord
    from ifriend.sessions.codec import encode_event

    writer, reader = await make_app(), await make_app()
    session = await writer.session_service.create_session(app_name=APP, user_id=USER, session_id="s1")
    await writer.session_service.append_event(session, said("one"))
    assert texts(await get(reader)) == ["one"]
    event = said("two")
    key = SessionKey(APP, USER, "s1")
    crashed = await store_of(writer).mysql.load(key)
    await store_of(writer).mysql.append(
        key, EventRecord(event, encode_event(event), {}, {}, {}), expected=crashed.revision
    )
    await reader.session_service.append_event(await get(reader), event)  # the retry
    assert texts(await get(reader)) == ["one", "two"]
    assert texts(await get(writer)) == ["one", "two"]


async def test_a_replica_sees_what_another_acknowledged_fetching_only_the_tail(make_app, monkeypatch):
    a, b = await make_app(), await make_app()
    session = await a.session_service.create_session(app_name=APP, user_id=USER, session_id="s1")
    for i in range(5):
        await a.session_service.append_event(session, said(f"a{i}"))
    assert texts(await get(b)) == [f"a{i}" for i in range(5)]

    probes = []
    real_probe = store_of(b).redis.probe

    async def spy(key, known):
        probe = await real_probe(key, known)
        probes.append((known, probe))
        return probe

    monkeypatch.setattr(store_of(b).redis, "probe", spy)
    await a.session_service.append_event(session, said("a5"))
    seen = await get(b)
    assert texts(seen)[-1] == "a5" and len(seen.events) == 6
    assert len(probes) == 1  # one Redis round trip validated the LRU
    known, probe = probes[0]
    assert known.version == 5 and probe.status == "behind" and len(probe.tail) == 1

    probes.clear()
    again = await get(b)
    assert len(probes) == 1 and probes[0][1].status == "current" and probes[0][1].tail == []
    # b writes through its own copy; a, whose LRU is behind, catches up.
    await b.session_service.append_event(again, said("b6"))
    assert texts(await get(a))[-2:] == ["a5", "b6"]


async def test_stale_copy_is_rejected_across_replicas(make_app):
    from google.adk.errors._stale_session_error import StaleSessionError

    a, b = await make_app(), await make_app()
    await a.session_service.create_session(app_name=APP, user_id=USER, session_id="s1")
    copy_a, copy_b = await get(a), await get(b)
    await a.session_service.append_event(copy_a, said("first"))
    with pytest.raises(StaleSessionError):
        await b.session_service.append_event(copy_b, said("second"))
    assert texts(await get(b)) == ["first"]


async def test_state_scopes_are_fresh_on_every_replica(make_app):
    a, b = await make_app(), await make_app()
    s1 = await a.session_service.create_session(app_name=APP, user_id=USER, session_id="s1")
    s2 = await b.session_service.create_session(app_name=APP, user_id=USER, session_id="s2")
    assert (await get(b, "s1")).state == {}
    await a.session_service.append_event(s1, said("x", **{"app:mode": "fast", "user:name": "Ada", "k": 1}))
    seen = await get(b, "s1")
    assert seen.state == {"app:mode": "fast", "user:name": "Ada", "k": 1}
    other = await get(b, "s2")
    assert other.state == {"app:mode": "fast", "user:name": "Ada"}
    await b.session_service.append_event(s2, said("y", **{"user:name": "Grace"}))
    assert (await get(a, "s1")).state["user:name"] == "Grace"
    assert await a.session_service.get_user_state(app_name=APP, user_id=USER) == {"name": "Grace"}


async def test_flushall_costs_only_a_rehydration(make_app, private_redis, spans):
    import redis.asyncio as aioredis

    app = await make_app(redis={"url": private_redis.url})
    session = await app.session_service.create_session(app_name=APP, user_id=USER, session_id="s1")
    for i in range(3):
        await app.session_service.append_event(session, said(f"m{i}"))
    store_of(app).cache.clear()
    client = aioredis.Redis.from_url(private_redis.url)
    await client.flushall()
    await client.aclose()

    assert texts(await get(app)) == ["m0", "m1", "m2"]
    assert last_span(spans, "ifriend.session.get_session").attributes["ifriend.tier"] == "mysql"
    store_of(app).cache.clear()
    assert texts(await get(app)) == ["m0", "m1", "m2"]
    assert last_span(spans, "ifriend.session.get_session").attributes["ifriend.tier"] == "redis"
    assert texts(await get(app)) == ["m0", "m1", "m2"]
    assert last_span(spans, "ifriend.session.get_session").attributes["ifriend.tier"] == "lru"


async def test_expired_keys_are_rehydrated(make_app, spans):
    app = await make_app(redis={"session_ttl_seconds": 1})
    session = await app.session_service.create_session(app_name=APP, user_id=USER, session_id="s1")
    await app.session_service.append_event(session, said("old"))
    await asyncio.sleep(1.3)
    assert texts(await get(app)) == ["old"]
    assert last_span(spans, "ifriend.session.get_session").attributes["ifriend.tier"] == "mysql"
    assert texts(await get(app)) == ["old"]
    assert last_span(spans, "ifriend.session.get_session").attributes["ifriend.tier"] == "lru"


async def test_redis_restart_without_persistence(make_app, private_redis, spans):
    app = await make_app(redis={"url": private_redis.url})
    session = await app.session_service.create_session(app_name=APP, user_id=USER, session_id="s1")
    await app.session_service.append_event(session, said("before"))
    private_redis.stop()
    private_redis.start()
    store_of(app).cache.clear()
    seen = await get(app)
    assert texts(seen) == ["before"]
    await app.session_service.append_event(seen, said("after"))
    store_of(app).cache.clear()
    assert texts(await get(app)) == ["before", "after"]
    assert last_span(spans, "ifriend.session.get_session").attributes["ifriend.tier"] == "redis"


async def test_redis_down_keeps_working_from_mysql_and_says_so(make_app, private_redis, spans, caplog):
    caplog.set_level(logging.WARNING, logger="ifriend.tiered")
    app = await make_app(redis={"url": private_redis.url, "timeout_seconds": 0.5},
                         tiered={"redis_retry_seconds": 0.2})
    session = await app.session_service.create_session(app_name=APP, user_id=USER, session_id="s1")
    await app.session_service.append_event(session, said("up"))
    private_redis.stop()

    session = await get(app)
    await app.session_service.append_event(session, said("while down"))
    assert texts(await get(app)) == ["up", "while down"]
    span = last_span(spans, "ifriend.session.get_session")
    assert span.attributes["ifriend.tier"] == "mysql"
    assert any("Redis unreachable" in r.getMessage() for r in caplog.records)

    assert store_of(app).trust.in_outage  # so no replica believes Redis meanwhile

    private_redis.start()
    await until(lambda: not store_of(app).trust.in_outage)  # it checks Redis in the background
    other = await make_app(redis={"url": private_redis.url, "timeout_seconds": 0.5})
    for replica in (app, other):
        assert texts(await get(replica)) == ["up", "while down"]
    store_of(other).cache.clear()
    assert texts(await get(other)) == ["up", "while down"]
    assert last_span(spans, "ifriend.session.get_session").attributes["ifriend.tier"] == "redis"


async def test_paused_redis_never_serves_what_it_missed(make_app, private_redis, monkeypatch):
    from ifriend.errors import BackendTimeoutError

    options = {"url": private_redis.url, "timeout_seconds": 0.4}
    writer = await make_app(redis=options, tiered={"redis_retry_seconds": 0.1})
    reader = await make_app(redis=options)
    session = await writer.session_service.create_session(app_name=APP, user_id=USER, session_id="s1")
    await writer.session_service.append_event(session, said("one"))
    assert texts(await get(reader)) == ["one"]  # Redis and the reader's LRU hold "one"

    async def lost_in_the_outage(*args, **kwargs):
        await asyncio.sleep(0.4)
        raise BackendTimeoutError("Redis did not answer")

    private_redis.pause()
    try:
        # The mirror write never reaches Redis (it may not even have been sent).
        monkeypatch.setattr(store_of(writer).redis, "mirror_append", lost_in_the_outage)
        await writer.session_service.append_event(session, said("two"))
        monkeypatch.undo()
        await asyncio.sleep(0.5)  # the outage outlasts the lease
    finally:
        private_redis.resume()
    # Redis still holds a complete-looking copy at version 1; the expired lease makes
    # the reader repair it first, so it never serves a history missing "two".
    assert texts(await get(reader)) == ["one", "two"]
    assert texts(await get(writer)) == ["one", "two"]


async def test_lru_is_bounded_by_sessions_and_bytes(make_app):
    app = await make_app(tiered={"lru_max_sessions": 2})
    for sid in ("s1", "s2", "s3"):
        s = await app.session_service.create_session(app_name=APP, user_id=USER, session_id=sid)
        await app.session_service.append_event(s, said(sid))
    assert len(store_of(app).cache) == 2
    small = await make_app(tiered={"lru_max_bytes": 20_000})
    s = await small.session_service.create_session(app_name=APP, user_id=USER, session_id="big")
    for i in range(40):
        s = await get(small, "big")
        await small.session_service.append_event(s, said("x" * 200))
    assert store_of(small).cache.nbytes <= 20_000
    assert len((await get(small, "big")).events) == 40


async def test_duplicate_outcome_is_reported_by_mysql_once(make_app):
    app = await make_app()
    session = await app.session_service.create_session(app_name=APP, user_id=USER, session_id="s1")
    event = said("once")
    await app.session_service.append_event(session, event)
    key = SessionKey(APP, USER, "s1")
    stored = await store_of(app).mysql.load(key)
    from ifriend.sessions import EventRecord
    from ifriend.sessions.codec import encode_event

    record = EventRecord(event, encode_event(event), {}, {}, {})
    result = await store_of(app).append(key, record, expected=stored.revision)
    assert result.outcome is AppendOutcome.DUPLICATE
    assert texts(await get(app)) == ["once"]


async def test_lease_longer_than_the_redis_timeout_is_refused(make_app):
    from ifriend.errors import ConfigError

    with pytest.raises(ConfigError, match="backends.tiered.lease_ms"):
        await make_app(redis={"timeout_seconds": 1.0}, tiered={"lease_ms": 5000})
