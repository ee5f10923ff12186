"""The lean client: what it packs, the reply shapes it reads, and both protocols end to end."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from ifriend.sessions import SessionKey, SessionService
from ifriend_redis import RedisSettings, RedisStore
from ifriend_redis.connections import Connections, pack, pack_in_python
from ifriend_redis.fields import as_hash, scope_state, zpairs

from ..records import make_record


def test_packed_commands_are_what_redis_py_would_send():
    from redis.asyncio.connection import Connection

    ops = [
        ("EVALSHA", "a" * 40, 3, "p:{s|u}:meta", "p:{s|u}:log", "p:{s|u}:ids", 3600, "", -1),
        ("ZADD", "p:{a|app}:users", "GT", 1795784982.1161158, "user"),
        ("SET", "p:lease", b"1", "PXAT", 1795784982116, "XX"),
        ("RPUSH", "k", b"\x00\xff" + b"x" * 10_000, "d\u00e9j\u00e0 \u2713"),
        ("PING",),
    ]
    expected = b"".join(Connection().pack_commands(ops))
    assert pack(ops) == expected
    assert pack_in_python(ops) == expected


@pytest.mark.parametrize("packer", [pack, pack_in_python])
def test_arguments_redis_py_refuses_are_refused(packer):
    for bad in (True, None, object()):
        with pytest.raises(TypeError):
            packer([("SET", "k", bad)])


def test_replies_of_either_protocol_read_the_same():
    # RESP2 (and every script reply): flat lists; RESP3: maps and pairs
    flat = [b"_v", b"3", b"s:k", b'"v"', b"_op", b"x"]
    assert as_hash(flat) == as_hash(dict(zip(flat[::2], flat[1::2], strict=True)))
    assert scope_state(flat) == scope_state(as_hash(flat)) == ({"k": "v"}, 3)
    assert scope_state([]) == scope_state({}) == scope_state(None) == ({}, None)
    assert zpairs([b"u1", b"1.5", b"u2", b"2"]) == zpairs([[b"u1", 1.5], [b"u2", 2.0]])
    assert zpairs([b"u1", b"1.5"]) == [("u1", 1.5)]


@pytest.mark.parametrize("protocol", [2, 3])
async def test_the_store_works_over_either_protocol(redis_url, protocol):
    prefix = f"ifriend-test-{uuid.uuid4().hex}"
    store = RedisStore(RedisSettings(url=f"{redis_url}?protocol={protocol}", key_prefix=prefix))
    try:
        service = SessionService(store)
        session = await service.create_session(
            app_name="app", user_id="user", state={"k": 1, "app:a": 2, "user:u": 3}
        )
        key = SessionKey("app", "user", session.id)
        created = await store.load(key)
        assert created is not None
        result = await store.append(
            key, make_record("e1", state={"k": 2}, app={"a": 4}), expected=created.revision
        )
        loaded = await store.load(key)
        assert loaded is not None and [e.id for e in loaded.events] == ["e1"]
        assert (loaded.state, loaded.app_state, loaded.user_state) == ({"k": 2}, {"a": 4}, {"u": 3})
        probe = await store.probe(key, result.revision)
        assert (probe.status, probe.state, probe.app_state_version) == ("current", {"k": 2}, 2)
        assert [h.key for h in await store.list("app", None)] == [key]
        assert await store.get_user_state("app", "user") == {"u": 3}
        assert await store.grant_lease(int(time.time() * 1000) + 1000)
        assert await store.lease_present()
        await store.ping()
    finally:
        r = store.client.redis
        keys = [k async for k in r.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await r.delete(*keys)
        await store.close()


class _Pool:
    """Hands out numbered fake connections; the next `failures` attempts fail."""

    def __init__(self) -> None:
        self.made = 0
        self.failures = 0

    async def get_connection(self) -> int:
        await asyncio.sleep(0)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("down")
        self.made += 1
        return self.made


async def test_callers_beyond_the_limit_wait_in_turn_and_a_cancelled_one_loses_nothing():
    pool = _Pool()
    connections = Connections(pool, limit=1)
    first = await connections.acquire()
    second = asyncio.create_task(connections.acquire())
    cancelled = asyncio.create_task(connections.acquire())
    third = asyncio.create_task(connections.acquire())
    await asyncio.sleep(0.01)
    cancelled.cancel()
    connections.release(first)
    assert await second == first  # handed over, first come first served
    connections.release(first)
    assert await third == first  # the cancelled caller was skipped
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    connections.release(first)
    assert connections.size == 1 and pool.made == 1
    assert await connections.acquire() == first  # idle again


async def test_a_connection_that_could_not_be_made_lets_a_waiter_try():
    pool = _Pool()
    connections = Connections(pool, limit=1)
    pool.failures = 1
    failing = asyncio.create_task(connections.acquire())
    waiting = asyncio.create_task(connections.acquire())
    with pytest.raises(ConnectionError):
        await failing
    assert await asyncio.wait_for(waiting, 1) == 1
    assert connections.size == 1
