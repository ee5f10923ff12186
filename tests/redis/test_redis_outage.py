"""Deadlines and failures: typed errors without secrets, and a pool that recovers.

Tests that pause or restart a server use a private redis-server (`private_redis`),
never the shared one.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from ifriend.errors import BackendTimeoutError, BackendUnavailableError
from ifriend.sessions import Revision, SessionService
from ifriend_redis import RedisSettings, RedisStore

from ..records import make_record


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_unreachable_server_is_a_typed_error_without_the_password():
    store = RedisStore(
        RedisSettings(url=f"redis://:hunter2secret@127.0.0.1:{free_port()}/0", timeout_seconds=0.5)
    )
    try:
        for call in (store.connect(), store.ping(), store.load(_key())):
            with pytest.raises(BackendUnavailableError) as info:
                await call
            assert "hunter2secret" not in str(info.value)
            assert not isinstance(info.value, BackendTimeoutError)
    finally:
        await store.close()


async def test_a_paused_server_times_out_and_the_pool_recovers(private_redis, key):
    store = RedisStore(RedisSettings(url=private_redis.url, timeout_seconds=0.5))
    try:
        service = SessionService(store)
        await service.create_session(
            app_name=key.app_name, user_id=key.user_id, session_id=key.session_id
        )
        private_redis.pause()
        try:
            started = time.monotonic()
            with pytest.raises(BackendTimeoutError) as raised:
                await store.load(key)
            assert time.monotonic() - started < 2.0
            assert "0.5" in str(raised.value)
            started = time.monotonic()
            with pytest.raises(BackendTimeoutError):
                await store.append(key, make_record("during"), expected=Revision("x", 0))
            assert time.monotonic() - started < 2.0
        finally:
            private_redis.resume()
        # the next calls succeed on the same store: the pool replaced its connections
        got = await service.get_session(
            app_name=key.app_name, user_id=key.user_id, session_id=key.session_id
        )
        assert got is not None and got.events == []
        await store.ping()
    finally:
        await store.close()


async def test_a_restarted_server_costs_nothing_but_its_data(private_redis, key):
    store = RedisStore(RedisSettings(url=private_redis.url, timeout_seconds=0.5))
    try:
        service = SessionService(store)
        await service.connect()
        await service.create_session(
            app_name=key.app_name, user_id=key.user_id, session_id=key.session_id
        )
        private_redis.stop()
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError):
            await store.load(key)
        assert time.monotonic() - started < 2.0
        private_redis.start()  # same port, empty, no scripts loaded
        assert await store.load(key) is None  # reconnects, reloads the script, misses
        s = await service.create_session(
            app_name=key.app_name, user_id=key.user_id, session_id=key.session_id
        )
        assert s.id == key.session_id
    finally:
        await store.close()


async def test_a_connection_killed_by_the_server_is_replaced_by_the_single_retry(store, key):
    await store.create(
        key, incarnation="inc", state={}, app_delta={}, user_delta={}, created_at=1.0
    )
    own_id = await _client_id(store)  # the only connection of the store's calls now
    killer = RedisStore(store.settings)
    try:
        await killer.client.redis.client_kill_filter(_id=own_id)
    finally:
        await killer.close()
    assert (await store.load(key)).revision == Revision("inc", 0)
    assert await _client_id(store) != own_id


async def test_a_dead_connection_found_only_by_sending_is_replaced_once(
    store, key, command_log, monkeypatch
):
    """The EOF not yet seen when the call starts: the send or the read fails, one re-send."""
    from redis.asyncio.connection import AbstractConnection

    await store.create(
        key, incarnation="inc", state={}, app_delta={}, user_delta={}, created_at=1.0
    )
    own_id = await _client_id(store)
    killer = RedisStore(store.settings)
    try:
        await killer.client.redis.client_kill_filter(_id=own_id)
    finally:
        await killer.close()

    async def unaware(self: Any) -> bool:
        return False

    monkeypatch.setattr(AbstractConnection, "can_read", unaware)
    command_log.recording = True
    assert (await store.load(key)).revision == Revision("inc", 0)
    command_log.recording = False
    assert command_log.commands.count("EVALSHA") == 2  # sent on the dead one, then once more
    assert await _client_id(store) != own_id


@pytest.mark.parametrize("interruption", ["deadline", "cancellation"])
async def test_an_interrupted_exchange_never_leaves_its_reply_to_the_next_call(
    make_store, interruption
):
    """A call cut while its reply is pending: its connection is closed, never reused.

    BLPOP keeps the reply pending on the server. Reused, the connection would make
    the next call wait behind it (or read its reply); closed, the server drops the
    BLPOP, so a later push stays in the list.
    """
    store = await make_store(max_connections=1, timeout_seconds=0.3)
    blocked = f"{store.keys.prefix}:blocked"
    own_id = await _client_id(store)

    async def blpop() -> None:
        async with store.client.bounded("blpop"):
            await store.client.execute([("BLPOP", blocked, 5)])

    if interruption == "deadline":
        with pytest.raises(BackendTimeoutError):
            await blpop()
    else:
        task = asyncio.create_task(blpop())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    async with store.client.bounded("echo"):
        assert await store.client.execute([("ECHO", "mine")]) == [b"mine"]
    assert await _client_id(store) != own_id
    async with store.client.bounded("push"):
        await store.client.execute([("RPUSH", blocked, "theirs")])
        assert await store.client.execute([("LLEN", blocked)]) == [1]


async def test_a_deadline_on_a_paused_server_cuts_the_connection(private_redis, key):
    store = RedisStore(
        RedisSettings(url=private_redis.url, timeout_seconds=0.3, max_connections=1)
    )
    try:
        created = await store.create(
            key, incarnation="inc", state={}, app_delta={}, user_delta={}, created_at=1.0
        )
        own_id = await _client_id(store)
        private_redis.pause()
        try:
            with pytest.raises(BackendTimeoutError):
                await store.probe(key, created.revision)
        finally:
            private_redis.resume()
        # the next calls get their own replies, on a new connection
        async with store.client.bounded("echo"):
            assert await store.client.execute([("ECHO", "mine")]) == [b"mine"]
        assert await _client_id(store) != own_id
        assert (await store.probe(key, created.revision)).status == "current"
    finally:
        await store.close()


async def test_callers_beyond_max_connections_wait_for_a_connection(make_store, key):
    store = await make_store(max_connections=2)
    await store.create(
        key, incarnation="inc", state={}, app_delta={}, user_delta={}, created_at=1.0
    )
    loads = await asyncio.gather(*(store.load(key) for _ in range(20)))
    assert all(s.revision == Revision("inc", 0) for s in loads)
    assert store.client.transport.connections.size == 2


async def _client_id(store: RedisStore) -> int:
    async with store.client.bounded("client_id"):
        (own_id,) = await store.client.execute([("CLIENT", "ID")])
    return own_id


async def test_a_server_side_failure_is_unavailable_and_names_no_data(store, key):
    # a key of the wrong type makes the script fail with WRONGTYPE
    await store.client.redis.set(store.keys.session(key).meta, "not a hash")
    record = make_record("e", state={"secret": "do-not-log"}, text="private words")
    with pytest.raises(BackendUnavailableError) as info:
        await store.append(key, record, expected=Revision("x", 0))
    message = str(info.value)
    assert "WRONGTYPE" in message or "ResponseError" in message
    assert "private words" not in message and "do-not-log" not in message


def _key():
    from ifriend.sessions import SessionKey

    return SessionKey("app", "user", "s")
