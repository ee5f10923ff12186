"""`RedisStore` as a tier: layout, idempotency, TTLs, partial eviction, round trips."""

from __future__ import annotations

import time
import uuid

import pytest
from google.adk.errors._stale_session_error import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from redis.crc import key_slot

from ifriend.sessions import AppendOutcome, Revision, SessionKey
from ifriend_redis import scripts
from ifriend_redis.keys import Keys

from ..records import make_record
from .helpers import CommandLog


async def create(store, key: SessionKey, **kwargs):
    kwargs.setdefault("incarnation", uuid.uuid4().hex)
    kwargs.setdefault("state", {})
    kwargs.setdefault("app_delta", {})
    kwargs.setdefault("user_delta", {})
    kwargs.setdefault("created_at", time.time())
    return await store.create(key, **kwargs)


async def fill(store, key: SessionKey, n: int) -> Revision:
    revision = (await create(store, key)).revision
    for i in range(n):
        revision = (await store.append(key, make_record(f"e{i}"), expected=revision)).revision
    return revision


async def test_round_trip_keeps_payloads_revision_and_state(store, key):
    created = await create(store, key, state={"k": "v"}, app_delta={"a": 1}, user_delta={"u": 2})
    assert created.revision.version == 0
    assert (created.app_state, created.user_state) == ({"a": 1}, {"u": 2})
    assert (created.app_state_version, created.user_state_version) == (1, 1)
    records = [make_record(f"e{i}", state={"i": i}, timestamp=1000.0 + i) for i in range(3)]
    revision = created.revision
    for r in records:
        result = await store.append(key, r, expected=revision)
        assert result.outcome is AppendOutcome.APPLIED
        revision = result.revision
    assert revision == Revision(created.revision.incarnation, 3)
    loaded = await store.load(key)
    assert loaded.revision == revision
    assert loaded.payloads == [r.payload for r in records]
    assert [e.id for e in loaded.events] == ["e0", "e1", "e2"]
    assert loaded.state == {"k": "v", "i": 2}
    assert loaded.last_update_time == 1002.0
    assert (loaded.app_state_version, loaded.user_state_version) == (1, 1)
    tail = await store.load(key, num_recent_events=2, after_timestamp=1002.0)
    assert [e.id for e in tail.events] == ["e2"] and tail.payloads == [records[2].payload]


async def test_app_and_user_deltas_bump_their_versions(store, key):
    revision = (await create(store, key)).revision
    result = await store.append(key, make_record("e", app={"x": 1}), expected=revision)
    assert (result.app_state_version, result.user_state_version) == (1, None)
    result = await store.append(key, make_record("f", user={"y": 2}), expected=result.revision)
    assert (result.app_state_version, result.user_state_version) == (None, 1)
    assert await store.get_user_state("app", "user") == {"y": 2}


async def test_state_keys_cannot_clash_with_bookkeeping_fields(store, key):
    await create(store, key, state={"ver": 9, "inc": "x"}, app_delta={"_v": 7, "_floor": 1})
    loaded = await store.load(key)
    assert loaded.revision.version == 0
    assert loaded.state == {"ver": 9, "inc": "x"}
    assert loaded.app_state == {"_v": 7, "_floor": 1}
    assert loaded.app_state_version == 1


async def test_create_refuses_a_taken_id_but_a_retry_of_itself_succeeds(store, key):
    first = await create(store, key, incarnation="inc-1")
    again = await create(store, key, incarnation="inc-1")  # the reply was lost; re-sent
    assert again.revision == first.revision
    with pytest.raises(AlreadyExistsError):
        await create(store, key, incarnation="inc-2")


async def test_append_errors(store, key):
    with pytest.raises(SessionNotFoundError):
        await store.append(key, make_record(), expected=Revision("x", 0))
    revision = (await create(store, key)).revision
    await store.append(key, make_record("a"), expected=revision)
    with pytest.raises(StaleSessionError):
        await store.append(key, make_record("b"), expected=revision)
    with pytest.raises(StaleSessionError):
        await store.append(key, make_record("b"), expected=Revision("other", 1))
    assert (await store.load(key)).revision.version == 1


async def test_append_script_sent_twice_after_a_lost_reply_stores_one_entry(store, key):
    revision = (await create(store, key)).revision
    record = make_record("lost-reply", app={"n": 1})
    op = store._append_op(key, record, revision, mirror=False)
    first, second = await store.client.execute([op, op])
    assert first[0] == b"applied" and second[0] == b"duplicate"
    assert second[2] == 1
    r = store.client.redis
    sk = store.keys.session(key)
    assert await r.llen(sk.log) == 1 and await r.hlen(sk.ids) == 1
    # through the store: the duplicate is reported with the current revision
    result = await store.append(key, record, expected=revision)
    assert result.outcome is AppendOutcome.DUPLICATE
    assert result.revision == Revision(revision.incarnation, 1)
    # and the app delta's script, sent twice, bumps the version once
    ops = store._scope_ops(key, "op-1", {"n": 2}, {})
    assert await store.client.execute([ops[0], ops[0]]) == [1, 1]


async def test_ttl_is_set_and_refreshed(make_store, key):
    store = await make_store(session_ttl_seconds=100)
    revision = (await create(store, key)).revision
    await store.append(key, make_record(), expected=revision)
    r = store.client.redis
    sk = store.keys.session(key)
    for k in sk.all():
        assert 95 <= await r.ttl(k) <= 100
    for k in (store.keys.app_state("app"), store.keys.user_state("app", "user")):
        assert await r.ttl(k) in (-1, -2)  # state_ttl None: no TTL
    for k in sk.all():
        await r.expire(k, 10)
    await store.load(key, num_recent_events=1)
    for k in sk.all():
        assert await r.ttl(k) >= 95
    for k in (store.keys.sessions("app", "user"), store.keys.users("app")):
        assert 95 <= await r.ttl(k) <= 100


async def test_state_ttl_applies_to_state_hashes(make_store, key):
    store = await make_store(state_ttl=50)
    await create(store, key, app_delta={"a": 1}, user_delta={"u": 1})
    r = store.client.redis
    assert 45 <= await r.ttl(store.keys.app_state("app")) <= 50
    assert 45 <= await r.ttl(store.keys.user_state("app", "user")) <= 50


@pytest.mark.parametrize("lost", ["meta", "log", "ids"])
async def test_a_partly_evicted_session_is_a_miss_never_served(store, key, lost):
    revision = await fill(store, key, 3)
    sk = store.keys.session(key)
    await store.client.redis.delete(getattr(sk, lost))
    assert await store.load(key) is None
    assert (await store.probe(key, revision)).status == "miss"
    assert (await store.probe(key, None)).status == "miss"
    assert await store.list("app", "user") == []
    with pytest.raises(SessionNotFoundError):
        await store.append(key, make_record("x"), expected=revision)
    # the id is free again
    await create(store, key)
    assert (await store.load(key)).revision.version == 0


async def test_keys_of_a_session_share_one_slot_and_ids_never_collide(store):
    keys = Keys("p")
    awkward = ["a:b", "c", "a", "b:c", "{x}", "}{", "*", "|", "%7B", "日本語", "a b"]
    seen: dict[tuple[str, ...], SessionKey] = {}
    for app in awkward[:4]:
        for user in awkward:
            for sid in awkward[-4:]:
                sk = keys.session(SessionKey(app, user, sid))
                assert len({key_slot(k.encode()) for k in sk.all()}) == 1
                assert sk.all() not in seen
                seen[sk.all()] = SessionKey(app, user, sid)
        assert key_slot(keys.app_state(app).encode()) == key_slot(keys.users(app).encode())
        assert key_slot(keys.user_state(app, "u").encode()) == key_slot(
            keys.sessions(app, "u").encode()
        )
    assert keys.session(SessionKey("a:b", "c", "s")) != keys.session(SessionKey("a", "b:c", "s"))
    # and on the server
    one, two = SessionKey("a:b", "c", "s"), SessionKey("a", "b:c", "s")
    await create(store, one, state={"who": 1})
    await create(store, two, state={"who": 2})
    assert (await store.load(one)).state == {"who": 1}
    assert (await store.load(two)).state == {"who": 2}


async def test_list_reads_the_index_and_lazily_drops_dead_entries(store, key):
    await fill(store, key, 1)
    gone = SessionKey("app", "user", "gone")
    await create(store, gone)
    r = store.client.redis
    # a session whose keys vanished (TTL): skipped, and removed once its entry is old
    await r.delete(*store.keys.session(gone).all())
    assert [h.key for h in await store.list("app", "user")] == [key]
    index = store.keys.sessions("app", "user")
    assert await r.zscore(index, "gone") is not None  # too young to remove
    await r.zadd(index, {"gone": 1.0})
    assert [h.key for h in await store.list("app", None)] == [key]
    assert await r.zscore(index, "gone") is None
    # keys that the index does not name are not listed: no SCAN
    await r.zrem(index, key.session_id)
    assert await store.list("app", "user") == []
    # a user with no session left leaves the app's index once old
    await r.zadd(store.keys.users("app"), {"user": 1.0})
    assert await store.list("app", None) == []
    assert await r.zcard(store.keys.users("app")) == 0


async def test_list_headers_carry_state(store):
    k1, k2 = SessionKey("app", "u1", "s1"), SessionKey("app", "u2", "s2")
    await create(store, k1, state={"x": 1}, app_delta={"a": 1}, user_delta={"me": 1})
    await create(store, k2, user_delta={"me": 2})
    headers = {h.key: h for h in await store.list("app", None)}
    assert headers[k1].state == {"x": 1}
    assert headers[k1].user_state == {"me": 1} and headers[k2].user_state == {"me": 2}
    assert headers[k2].app_state == {"a": 1}


async def test_append_cost_does_not_depend_on_session_length(
    make_store, command_log: CommandLog
):
    store = await make_store()
    short, long = SessionKey("app", "user", "short"), SessionKey("app", "user", "long")
    revisions = {short: await fill(store, short, 10), long: await fill(store, long, 1000)}
    seen = {}
    for k in (short, long):
        command_log.reset()
        command_log.recording = True
        result = await store.append(k, make_record(f"next-{k.session_id}"), expected=revisions[k])
        command_log.recording = False
        seen[k] = (command_log.round_trips, list(command_log.commands))
        revisions[k] = result.revision
    assert seen[short] == seen[long]
    assert seen[short][0] == 1
    assert seen[short][1].count("EVALSHA") == 1  # the log sees what is sent
    assert "LRANGE" not in seen[short][1]
    # with app/user deltas: one more round trip, still independent of length
    for k in (short, long):
        command_log.reset()
        command_log.recording = True
        await store.append(k, make_record(f"d-{k.session_id}", app={"a": 1}), expected=revisions[k])
        command_log.recording = False
        seen[k] = (command_log.round_trips, list(command_log.commands))
    assert seen[short] == seen[long] and seen[short][0] == 2


async def test_round_trips_per_operation(make_store, command_log: CommandLog, key):
    store = await make_store()

    async def count(coro) -> int:
        command_log.reset()
        command_log.recording = True
        try:
            await coro
        finally:
            command_log.recording = False
        assert not {"SCAN", "KEYS"} & set(command_log.commands)
        return command_log.round_trips

    assert await count(create(store, key)) == 1
    other = SessionKey("app", "user", "with-state")
    assert await count(create(store, other, app_delta={"a": 1})) == 2
    await store.delete(key)
    revision = await fill(store, key, 5)
    assert await count(store.load(key)) == 1
    assert await count(store.load(key, num_recent_events=2)) == 1
    assert await count(store.probe(key, revision)) == 1
    assert await count(store.probe(key, Revision(revision.incarnation, 2))) == 1
    assert await count(store.list("app", "user")) == 2
    assert await count(store.list("app", None)) == 3
    assert await count(store.get_user_state("app", "user")) == 1
    assert await count(store.delete(key)) == 1


async def test_scripts_forgotten_by_the_server_are_loaded_again(make_store, key, monkeypatch):
    # Scripts with a text (so a sha) this server has never seen: the first call
    # gets NOSCRIPT, loads them and re-sends; no SCRIPT FLUSH on a shared server.
    marker = f"\n-- {uuid.uuid4().hex}\n"
    monkeypatch.setattr(scripts, "ALL", {n: t + marker for n, t in scripts.ALL.items()})
    store = await make_store(connect=False)
    created = await create(store, key)
    await store.append(key, make_record("e"), expected=created.revision)
    assert (await store.load(key)).revision.version == 1


async def test_num_recent_events_edge_cases(store, key):
    await fill(store, key, 4)
    assert [e.id for e in (await store.load(key, num_recent_events=0)).events] == []
    assert [e.id for e in (await store.load(key, num_recent_events=1)).events] == ["e3"]
    assert len((await store.load(key, num_recent_events=99)).events) == 4
    assert (await store.load(SessionKey("app", "user", "nope"))) is None


async def test_server_side_work_of_an_append_does_not_depend_on_length(private_redis):
    """INFO commandstats (scripts' inner calls included) on a server of this test alone."""
    from ifriend_redis import RedisSettings, RedisStore

    store = RedisStore(RedisSettings(url=private_redis.url))
    try:
        await store.connect()
        r = store.client.redis
        short, long = SessionKey("app", "user", "short"), SessionKey("app", "user", "long")
        revisions = {short: await fill(store, short, 10), long: await fill(store, long, 1000)}
        calls = {}
        for k in (short, long):
            await r.config_resetstat()
            await store.append(k, make_record(f"n-{k.session_id}"), expected=revisions[k])
            stats = await r.info("commandstats")
            calls[k] = {
                name: v["calls"] for name, v in stats.items() if not name.startswith("cmdstat_config")
            }
        assert calls[short] == calls[long]
        assert calls[short]["cmdstat_evalsha"] == 1
        assert calls[short]["cmdstat_rpush"] == 1
        assert "cmdstat_lrange" not in calls[short]
    finally:
        await store.close()


async def test_every_call_is_a_span_naming_the_tier(store, key, spans):
    await fill(store, key, 2)
    await store.load(key)
    await store.probe(key, None)
    calls = {s.attributes["ifriend.call"]: s for s in spans.get_finished_spans()}
    for call in ("create", "append", "load", "probe"):
        assert calls[call].attributes["ifriend.tier"] == "redis"
        assert calls[call].attributes["db.system.name"] == "redis"
    for call in ("append", "probe"):  # `{db.operation.name} {script}`
        assert calls[call].attributes["db.stored_procedure.name"] == call
        assert calls[call].name == f"{calls[call].attributes['db.operation.name']} {call}"
    assert calls["load"].attributes["ifriend.events"] == 2
    assert calls["probe"].attributes["ifriend.outcome"] == "behind"
    with pytest.raises(StaleSessionError):
        await store.append(key, make_record("x"), expected=Revision("nope", 0))
    failed = [s for s in spans.get_finished_spans() if s.attributes.get("ifriend.call") == "append"][-1]
    assert failed.attributes["error.type"] == "StaleSessionError"
    assert failed.attributes["ifriend.outcome"] == "stale"


async def test_concurrent_writers_one_wins_the_rest_are_stale_or_duplicate(store, key):
    import asyncio

    revision = (await create(store, key)).revision
    records = [make_record(f"w{i}") for i in range(20)]
    results = await asyncio.gather(
        *(store.append(key, r, expected=revision) for r in records), return_exceptions=True
    )
    applied = [r for r in results if not isinstance(r, BaseException)]
    assert len(applied) == 1
    assert all(isinstance(r, StaleSessionError) for r in results if r not in applied)
    same = make_record("same")
    revision = applied[0].revision
    results = await asyncio.gather(*(store.append(key, same, expected=revision) for _ in range(10)))
    assert sorted(r.outcome.value for r in results) == ["applied"] + ["duplicate"] * 9
    assert (await store.load(key)).revision.version == 2
