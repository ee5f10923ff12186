"""What the tiered store tells telemetry: the tier that answered, LRU state, counters,
and a client span per Redis and MySQL round trip (database semantic conventions)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from ifriend import telemetry
from ifriend_tiered.metrics import LRU_HITS, LRU_MISSES, REDIS_FALLBACKS, REHYDRATIONS

from ..captured import last_span
from .test_tiered import APP, USER, get, said, store_of, texts

SECRET_TEXT = "the-event-text-never-in-a-span"


def children_of(spans, parent):
    return [s for s in spans.get_finished_spans() if s.parent and s.parent.span_id == parent.context.span_id]


async def test_reads_say_which_tier_answered_and_count_lru_hits(make_app, spans, metric_points):
    app = await make_app()
    session = await app.session_service.create_session(app_name=APP, user_id=USER, session_id="s1")
    await app.session_service.append_event(session, said(SECRET_TEXT))

    await get(app)  # the LRU holds it, Redis confirms the revision
    hit = last_span(spans, "ifriend.session.get_session")
    assert hit.attributes["ifriend.tier"] == "lru"
    assert hit.attributes["ifriend.lru"] == "current"
    assert hit.attributes["ifriend.events_read"] == 0
    assert metric_points.total(LRU_HITS) == 1

    store_of(app).cache.clear()
    await get(app)
    cold = last_span(spans, "ifriend.session.get_session")
    assert (cold.attributes["ifriend.tier"], cold.attributes["ifriend.lru"]) == ("redis", "missing")
    assert cold.attributes["ifriend.events_read"] == 1
    assert metric_points.total(LRU_MISSES) == 1

    durations = metric_points.points(
        telemetry.OPERATION_DURATION, ifriend__operation="ifriend.session.get_session"
    )
    assert {(a["ifriend.tier"], a["ifriend.backend"], a["ifriend.outcome"]) for a, _ in durations} == {
        ("lru", "tiered", "ok"),
        ("redis", "tiered", "ok"),
    }
    append = metric_points.points(
        telemetry.OPERATION_DURATION, ifriend__operation="ifriend.session.append_event"
    )
    assert [(a["ifriend.tier"], a["ifriend.outcome"]) for a, _ in append] == [("mysql", "applied")]


async def test_round_trips_are_client_spans_with_database_conventions(make_app, spans, mysql_url, redis_url):
    app = await make_app()
    session = await app.session_service.create_session(app_name=APP, user_id=USER, session_id="s1")
    await app.session_service.append_event(session, said(SECRET_TEXT))

    append = last_span(spans, "ifriend.session.append_event")
    round_trips = children_of(spans, append)
    mysql = [s for s in round_trips if s.attributes.get("db.system.name") in ("mysql", "mariadb")]
    assert len(mysql) == 1
    attributes = mysql[0].attributes
    target = urlsplit(mysql_url)
    assert attributes["ifriend.call"] == "append"
    assert attributes["db.operation.name"].split()[0] in ("BATCH", "INSERT")
    assert attributes["server.address"] == target.hostname
    assert attributes["server.port"] == target.port
    assert attributes["db.namespace"] == target.path.lstrip("/")
    assert mysql[0].kind.name == "CLIENT"
    redis = [s for s in round_trips if s.attributes.get("db.system.name") == "redis"]
    assert redis
    server = urlsplit(redis_url)
    for span in redis:
        assert span.kind.name == "CLIENT"
        assert span.name.startswith(span.attributes["db.operation.name"] + " ")
        assert (span.attributes["server.address"], span.attributes["server.port"]) == (server.hostname, server.port)
        assert span.attributes["db.namespace"] == (server.path.lstrip("/") or "0")
    for span in spans.get_finished_spans():
        for value in span.attributes.values():
            assert SECRET_TEXT not in str(value)
        assert not any(key.startswith("db.query") or key == "db.statement" for key in span.attributes)


async def test_a_rehydration_from_mysql_is_counted(make_app, spans, metric_points):
    app = await make_app(redis={"session_ttl_seconds": 1})
    session = await app.session_service.create_session(app_name=APP, user_id=USER, session_id="s1")
    await app.session_service.append_event(session, said("old"))
    await asyncio.sleep(1.3)
    store_of(app).cache.clear()
    assert texts(await get(app)) == ["old"]
    span = last_span(spans, "ifriend.session.get_session")
    assert span.attributes["ifriend.tier"] == "mysql"
    assert span.attributes["ifriend.rehydrated"] is True
    assert metric_points.total(REHYDRATIONS) == 1


async def test_fallbacks_while_redis_is_down_are_counted(make_app, private_redis, spans, metric_points):
    app = await make_app(
        redis={"url": private_redis.url, "timeout_seconds": 0.5}, tiered={"redis_retry_seconds": 5}
    )
    session = await app.session_service.create_session(app_name=APP, user_id=USER, session_id="s1")
    await app.session_service.append_event(session, said("up"))
    private_redis.stop()

    session = await get(app)  # Redis fails: served from MySQL
    degraded = last_span(spans, "ifriend.session.get_session")
    assert degraded.attributes["ifriend.redis.degraded"] is True
    await app.session_service.append_event(session, said("while down"))  # Redis skipped
    assert texts(await get(app)) == ["up", "while down"]
    fallbacks = dict(
        (a["ifriend.operation"], v) for a, v in metric_points.points(REDIS_FALLBACKS)
    )
    assert fallbacks == {"load": 2, "append": 1}


async def test_a_stale_write_is_counted_and_typed(make_app, spans, metric_points):
    from google.adk.errors import StaleSessionError

    app = await make_app()
    session = await app.session_service.create_session(app_name=APP, user_id=USER, session_id="s1")
    other = await get(app)
    await app.session_service.append_event(session, said("first"))
    try:
        await app.session_service.append_event(other, said("second"))
    except StaleSessionError:
        pass
    else:
        raise AssertionError("the stale write was accepted")
    span = last_span(spans, "ifriend.session.append_event")
    assert span.attributes["error.type"] == "StaleSessionError"
    assert span.status.status_code.name == "ERROR"
    assert metric_points.total(telemetry.STALE_WRITES, ifriend__backend="tiered") == 1
    failed = metric_points.points(
        telemetry.OPERATION_DURATION,
        ifriend__operation="ifriend.session.append_event",
        ifriend__outcome="error",
    )
    assert [a["error.type"] for a, _ in failed] == ["StaleSessionError"]


async def test_a_retried_round_trip_says_so(make_app, spans, monkeypatch):
    import asyncmy

    from ifriend.sessions import SessionKey

    app = await make_app()
    await app.session_service.create_session(app_name=APP, user_id=USER, session_id="s1")
    mysql = store_of(app).mysql
    execute, lost = mysql._execute, []

    async def lose_the_first(conn, batch):
        if not lost:
            lost.append(conn)
            raise asyncmy.errors.OperationalError(2013, "Lost connection to server during query")
        return await execute(conn, batch)

    monkeypatch.setattr(mysql, "_execute", lose_the_first)
    assert await mysql.load(SessionKey(APP, USER, "s1")) is not None
    assert lost
    [load] = [s for s in spans.get_finished_spans() if s.attributes.get("ifriend.call") == "load"]
    assert load.attributes["ifriend.retries"] == 1
