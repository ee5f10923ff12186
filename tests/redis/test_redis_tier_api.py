"""What the tiered composition calls: probe, hydrate, mirror, floors, invalidate, the lease."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from ifriend.sessions import Revision, SessionKey, StoredSession
from ifriend_redis.tier import UnreplicatedWriteError

from ..records import make_record


def durable_copy(key: SessionKey, incarnation: str, n: int, *, state=None) -> StoredSession:
    """A whole session as the MySQL tier would return it."""
    records = [make_record(f"e{i}", timestamp=1000.0 + i) for i in range(n)]
    return StoredSession(
        key=key,
        revision=Revision(incarnation, n),
        last_update_time=1000.0 + n,
        state=dict(state or {}),
        events=[r.event for r in records],
        payloads=[r.payload for r in records],
    )


async def test_probe_current_behind_and_miss(store, key):
    created = await store.create(
        key, incarnation="inc", state={}, app_delta={"a": 1}, user_delta={}, created_at=1.0
    )
    revision = created.revision
    records = [make_record(f"e{i}", state={"i": i}) for i in range(5)]
    for r in records:
        revision = (await store.append(key, r, expected=revision)).revision

    whole = await store.probe(key, None)
    assert whole.status == "behind" and whole.revision == Revision("inc", 5)
    assert whole.tail == [r.payload for r in records]
    assert whole.state == {"i": 4}
    assert (whole.app_state, whole.app_state_version) == ({"a": 1}, 1)
    assert (whole.user_state, whole.user_state_version) == ({}, None)  # no user hash

    current = await store.probe(key, Revision("inc", 5))
    assert current.status == "current" and current.tail == []
    assert current.revision == Revision("inc", 5) and current.state == {"i": 4}
    assert current.last_update_time == records[-1].timestamp

    behind = await store.probe(key, Revision("inc", 3))
    assert behind.status == "behind"
    assert behind.tail == [records[3].payload, records[4].payload]

    for known in (Revision("other", 5), Revision("inc", 6)):
        miss = await store.probe(key, known)
        assert miss.status == "miss" and miss.revision is None and miss.tail == []
        assert miss.app_state == {"a": 1}  # scope state comes back on a miss too
    assert (await store.probe(SessionKey("app", "user", "absent"), None)).status == "miss"


def in_ms(ms: int) -> int:
    return int(time.time() * 1000) + ms


async def test_lease_is_absolute_and_seen_by_probe(store, key):
    assert not await store.lease_present()
    assert not (await store.probe(key, None)).lease
    assert not await store.grant_lease(in_ms(-10))  # a deadline already past grants nothing
    assert not await store.lease_present()
    assert await store.grant_lease(in_ms(5000))
    assert await store.lease_present()
    assert (await store.probe(key, None)).lease
    pttl = await store.client.redis.pttl(store.keys.lease)
    assert 4000 < pttl <= 5000
    assert await store.grant_lease(in_ms(5))
    await asyncio.sleep(0.05)
    assert not await store.lease_present()


async def test_writes_wait_for_replica_acks_when_required(store, key):
    await store.create(key, incarnation="inc", state={}, app_delta={}, user_delta={}, created_at=1.0)
    assert await store.healthy()
    store.require_replica_acks(1, 20)  # the test server has no replica
    try:
        with pytest.raises(UnreplicatedWriteError, match="0 of 1 replicas"):
            await store.mirror_append(key, make_record("e1"), Revision("inc", 1))
        with pytest.raises(UnreplicatedWriteError):
            await store.invalidate(key, floor=5)
        assert not await store.healthy()
    finally:
        store.require_replica_acks(0, 20)
    # the write itself was applied: only its replication was unconfirmed
    assert (await store.probe(key, None)).status == "miss"  # the tombstone of invalidate


async def test_invalidate_leaves_floors_on_the_session_and_its_scopes(store, key):
    app_hash = store.keys.app_state(key.app_name)
    user_hash = store.keys.user_state(key.app_name, key.user_id)
    await store.create(key, incarnation="inc", state={}, app_delta={"a": 1}, user_delta={"u": 1},
                       created_at=1.0)
    await store.invalidate(key, floor=3, app_floor=2, user_floor=7, ttl=30)
    r = store.client.redis
    assert await r.hget(store.keys.session(key).meta, "floor") == b"3"
    assert await r.hgetall(app_hash) == {b"_floor": b"2"}
    assert await r.hgetall(user_hash) == {b"_floor": b"7"}
    assert 0 < await r.ttl(app_hash) <= 30
    assert not await store.hydrate_scope_state(key.app_name, None, {"a": 0}, 1)  # older: refused
    assert await store.hydrate_scope_state(key.app_name, None, {"a": 1}, 2)


async def test_hydrate_writes_a_whole_consistent_session(store, key):
    stored = durable_copy(key, "inc", 3, state={"s": 1})
    assert await store.hydrate(stored)
    loaded = await store.load(key)
    assert loaded.revision == Revision("inc", 3)
    assert loaded.payloads == stored.payloads
    assert loaded.state == {"s": 1} and loaded.last_update_time == 1003.0
    sk = store.keys.session(key)
    for k in sk.all():
        assert await store.client.redis.ttl(k) > 0
    # an append continues from it, and sees the hydrated ids
    await store.append(key, make_record("e3"), expected=Revision("inc", 3))
    dup = await store.append(key, make_record("e1"), expected=Revision("inc", 4))
    assert dup.outcome.value == "duplicate"
    # same incarnation at the same or an older version: refused
    assert not await store.hydrate(durable_copy(key, "inc", 4))
    assert not await store.hydrate(durable_copy(key, "inc", 2))
    # newer, or another incarnation: replaces
    assert await store.hydrate(durable_copy(key, "inc", 6))
    assert (await store.load(key)).revision == Revision("inc", 6)
    assert await store.hydrate(durable_copy(key, "new", 1))
    assert (await store.load(key)).revision == Revision("new", 1)


async def test_hydrate_of_a_long_session_in_one_call(store, key):
    stored = durable_copy(key, "inc", 6000)
    assert await store.hydrate(stored)
    probe = await store.probe(key, Revision("inc", 5990))
    assert probe.status == "behind" and len(probe.tail) == 10
    assert probe.tail == stored.payloads[-10:]


async def test_hydrate_replaces_a_partly_evicted_copy(store, key):
    assert await store.hydrate(durable_copy(key, "inc", 3))
    await store.client.redis.delete(store.keys.session(key).ids)
    # inconsistent keys count as absent: even an older copy may replace them
    assert await store.hydrate(durable_copy(key, "inc", 2))
    assert (await store.probe(key, Revision("inc", 2))).status == "current"
    assert await store.hydrate(durable_copy(key, "inc", 3))
    assert (await store.probe(key, Revision("inc", 3))).status == "current"


async def test_mirror_append_applies_in_order_and_is_idempotent(store, key):
    assert await store.hydrate(durable_copy(key, "inc", 2))
    record = make_record("e2", state={"x": 1})
    assert await store.mirror_append(key, record, Revision("inc", 3))
    assert await store.mirror_append(key, record, Revision("inc", 3))  # retried: duplicate
    loaded = await store.load(key)
    assert loaded.revision == Revision("inc", 3) and loaded.state == {"x": 1}
    assert [e.id for e in loaded.events] == ["e0", "e1", "e2"]


async def test_the_floor_refuses_a_slower_readers_older_copy(store, key):
    # reader loads v5 from MySQL; writer commits v6, finds Redis without the session
    reader_copy = durable_copy(key, "inc", 5)
    assert not await store.mirror_append(key, make_record("e5"), Revision("inc", 6))
    meta = await store.client.redis.hgetall(store.keys.session(key).meta)
    assert meta == {b"floor": b"6"}
    assert await store.client.redis.ttl(store.keys.session(key).meta) > 0
    assert await store.load(key) is None
    assert not await store.hydrate(reader_copy)  # refused: older than the floor
    assert await store.load(key) is None
    assert await store.hydrate(durable_copy(key, "inc", 6))
    assert (await store.load(key)).revision == Revision("inc", 6)
    assert b"floor" not in await store.client.redis.hgetall(store.keys.session(key).meta)


async def test_mirror_append_onto_a_different_history_leaves_a_tombstone(store, key):
    assert await store.hydrate(durable_copy(key, "inc", 3))
    # Redis is at 3 but the durable tier committed 3 -> 4 from a history Redis lacks
    assert not await store.mirror_append(key, make_record("other"), Revision("inc", 5))
    sk = store.keys.session(key)
    assert await store.client.redis.hgetall(sk.meta) == {b"floor": b"5"}
    assert await store.client.redis.exists(sk.log, sk.ids) == 0
    # a floor never goes down
    assert not await store.mirror_append(key, make_record("x"), Revision("inc", 2))
    assert await store.client.redis.hget(sk.meta, "floor") == b"5"


async def test_scope_state_mirror_hydrate_and_floor(store):
    app = f"app-{uuid.uuid4().hex[:6]}"
    r = store.client.redis
    # missing hash: a mirror leaves only a floor
    assert not await store.mirror_scope_state(app, None, {"a": 1}, 4)
    assert await r.hgetall(store.keys.app_state(app)) == {b"_floor": b"4"}
    assert not await store.hydrate_scope_state(app, None, {"a": 0}, 3)
    assert await store.hydrate_scope_state(app, None, {"a": 1, "b": 2}, 4)
    probe = await store.probe(SessionKey(app, "u", "s"), None)
    assert (probe.app_state, probe.app_state_version) == ({"a": 1, "b": 2}, 4)
    # in order: applied; replayed: no-op; ahead of a gap: floor
    assert await store.mirror_scope_state(app, None, {"b": 3}, 5)
    assert await store.mirror_scope_state(app, None, {"b": 99}, 5)
    probe = await store.probe(SessionKey(app, "u", "s"), None)
    assert (probe.app_state, probe.app_state_version) == ({"a": 1, "b": 3}, 5)
    assert not await store.hydrate_scope_state(app, None, {"a": 1}, 5)  # not newer
    assert not await store.mirror_scope_state(app, None, {"c": 1}, 7)
    assert await r.hgetall(store.keys.app_state(app)) == {b"_floor": b"7"}
    # user state works the same way
    assert await store.hydrate_scope_state(app, "u", {"lang": "fr"}, 2)
    assert await store.mirror_scope_state(app, "u", {"lang": "de"}, 3)
    assert await store.get_user_state(app, "u") == {"lang": "de"}
    await store.invalidate_scope_state(app, "u")
    assert (await store.probe(SessionKey(app, "u", "s"), None)).user_state_version is None


async def test_invalidate(store, key):
    assert await store.hydrate(durable_copy(key, "inc", 2))
    await store.invalidate(key)
    assert await store.client.redis.exists(*store.keys.session(key).all()) == 0
    assert await store.hydrate(durable_copy(key, "inc", 2))
    await store.invalidate(key, floor=3)
    assert await store.load(key) is None
    assert not await store.hydrate(durable_copy(key, "inc", 2))
    assert await store.hydrate(durable_copy(key, "inc", 3))
