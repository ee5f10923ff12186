"""The Redis memory store: key layout and hash tags, expiry, no keyspace scans, deadlines."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from google.adk.events.event import Event
from google.adk.sessions.session import Session
from google.genai import types
from redis.crc import key_slot

from ifriend import App, Settings
from ifriend_bench.cleanup import delete_redis_keys
from ifriend.errors import BackendTimeoutError, BackendUnavailableError
from ifriend.memory import MemoryService
from ifriend_redis import RedisMemoryStore, RedisSettings

from ..servers import PrivateRedis


def event(text: str, **fields) -> Event:
    return Event(author="user", invocation_id="i", content=types.Content(parts=[types.Part(text=text)]), **fields)


async def ids(service: MemoryService, query: str, app: str = "app", user: str = "u") -> list[str]:
    found = await service.search_memory(app_name=app, user_id=user, query=query)
    return [m.id for m in found.memories]


def open_service(url: str, prefix: str, **store: object) -> MemoryService:
    return MemoryService(RedisMemoryStore(RedisSettings(url=url, key_prefix=prefix, timeout_seconds=0.5), **store))


@pytest.fixture
async def shared(redis_url: str) -> AsyncIterator[tuple[str, str]]:
    """The shared test Redis and a key prefix of this test alone (its keys deleted after)."""
    url = redis_url
    prefix = f"ifriend-mt-{uuid.uuid4().hex[:10]}"
    yield url, prefix
    await delete_redis_keys(url, prefix)


async def test_every_key_of_a_user_shares_one_hash_tag(shared) -> None:
    url, prefix = shared
    service = open_service(url, prefix)
    await service.connect()
    try:
        await service.add_session_to_memory(
            Session(id="s/1:x", app_name="my:app", user_id="U|1/{x}", events=[event("café au lait"), event("tea")])
        )
        await service.delete_memory(app_name="my:app", user_id="U|1/{x}", memory_id=(await ids(service, "tea", "my:app", "U|1/{x}"))[0])
    finally:
        await service.close()
    client = aioredis.Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
        ttls = [await client.pttl(k) for k in keys]
    finally:
        await client.aclose()
    tag = b"{m|my%3Aapp|U%7C1%2F%7Bx%7D}"
    assert keys and all(tag in k for k in keys)
    assert len({key_slot(k) for k in keys}) == 1
    suffixes = {k.split(tag + b":", 1)[1].split(b":")[0] for k in keys}
    assert {b"e", b"i", b"v", b"x", b"d", b"s", b"t"} <= suffixes
    assert all(0 < ttl <= 30 * 86_400_000 for ttl in ttls)


async def test_entries_expire_after_the_ttl(shared) -> None:
    url, prefix = shared
    service = open_service(url, prefix, ttl_ms=400)
    await service.connect()
    try:
        old = event("fleeting thought")
        await service.add_events_to_memory(app_name="app", user_id="u", events=[old])
        assert await ids(service, "fleeting") == [old.id]
        await asyncio.sleep(0.5)
        assert await ids(service, "fleeting") == []
        new = event("fleeting again")
        await service.add_events_to_memory(app_name="app", user_id="u", events=[new, old])
        assert await ids(service, "fleeting") == [new.id, old.id]  # re-added: a new entry
    finally:
        await service.close()


async def test_an_idle_users_keys_all_expire(shared) -> None:
    url, prefix = shared
    service = open_service(url, prefix, ttl_ms=300)
    await service.connect()
    try:
        e = event("short lived words")
        await service.add_session_to_memory(Session(id="s", app_name="app", user_id="u", events=[e]))
        await service.delete_memory(app_name="app", user_id="u", memory_id=e.id)
        await asyncio.sleep(0.6)
    finally:
        await service.close()
    client = aioredis.Redis.from_url(url)
    try:
        assert [k async for k in client.scan_iter(match=f"{prefix}:*")] == []
    finally:
        await client.aclose()


async def test_adds_and_searches_never_scan_the_keyspace(tmp_path) -> None:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        service = open_service(server.url, "p")
        await service.connect()
        client = aioredis.Redis.from_url(server.url)
        try:
            for u in range(20):
                events = [event(f"word{i % 7} common text {u}") for i in range(30)]
                await service.add_session_to_memory(Session(id="s", app_name="app", user_id=f"u{u}", events=events))
            await client.config_resetstat()
            await service.add_events_to_memory(app_name="app", user_id="u3", events=[event("one more common word1")])
            for query in ("common word1", "text 3", "missing"):
                await ids(service, query, user="u3")
            stats = await client.info("commandstats")
        finally:
            await client.aclose()
            await service.close()
    finally:
        server.stop()
    assert not {"cmdstat_scan", "cmdstat_keys", "cmdstat_randomkey", "cmdstat_sscan"} & set(stats)
    assert stats["cmdstat_evalsha"]["calls"] == 4  # one round trip per call


async def test_a_stuck_server_times_out_and_an_absent_one_is_unavailable(tmp_path) -> None:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        service = open_service(server.url, "p")
        await service.connect()
        try:
            await service.add_events_to_memory(app_name="app", user_id="u", events=[event("hello")])
            server.pause()
            started = time.monotonic()
            with pytest.raises(BackendTimeoutError):
                await ids(service, "hello")
            assert time.monotonic() - started < 2
        finally:
            server.resume()
            await service.close()
        url = server.url
    finally:
        server.stop()
    absent = open_service(url, "p")
    with pytest.raises(BackendUnavailableError):
        await absent.connect()
    await absent.close()


async def test_sessions_and_memory_share_the_redis_settings(shared) -> None:
    url, prefix = shared
    settings = Settings.model_validate(
        {
            "session": {"backend": "redis"},
            "memory": {"backend": "redis"},
            "backends": {"redis": {"url": url, "key_prefix": prefix, "memory_ttl_days": 7}},
        }
    )
    async with App(settings) as app:
        store = app.memory_service.store
        assert isinstance(store, RedisMemoryStore) and store.ttl_ms == 7 * 86_400_000
        session = await app.session_service.create_session(app_name="app", user_id="u")
        await app.session_service.append_event(session, event("stored twice over"))
        await app.memory_service.add_session_to_memory(session)
        assert await ids(app.memory_service, "twice") == [session.events[0].id]
