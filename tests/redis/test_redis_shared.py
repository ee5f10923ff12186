"""One set of Redis connections per URL and event loop, shared by every component."""

from __future__ import annotations

import asyncio
import uuid

from ifriend import App, Settings
from ifriend_bench.cleanup import delete_redis_keys
from ifriend_redis import RedisClient, RedisSettings, shared
from ifriend_slack.dedupe import RedisState, build_state


async def ping(client: RedisClient) -> None:
    async with client.bounded("ping"):
        await client.execute([("PING",)])


async def test_sessions_memory_and_slack_dedupe_share_one_pool(redis_url: str) -> None:
    prefix = f"ifriend-test-{uuid.uuid4().hex}"
    redis = {"url": redis_url, "key_prefix": prefix}
    settings = Settings.model_validate(
        {"session": {"backend": "redis"}, "memory": {"backend": "redis"}, "backends": {"redis": redis}}
    )
    parsed = RedisSettings(**redis)
    try:
        async with App(settings) as app:
            dedupe = build_state("auto", backends=settings.backends, ttl_seconds=60)
            assert isinstance(dedupe, RedisState)
            try:
                assert await dedupe.claim("T:C:1.1")
                session_store = app.session_service.store  # type: ignore[attr-defined]
                memory_store = app.memory_service.store  # type: ignore[attr-defined]
                transports = {
                    id(c.transport) for c in (session_store.client, memory_store.client, dedupe.client)
                }
                assert len(transports) == 1
                assert shared.users(parsed) == 3
            finally:
                await dedupe.close()
            assert shared.users(parsed) == 2
        assert shared.users(parsed) == 0  # the last one out closed it
    finally:
        await delete_redis_keys(redis_url, prefix)


async def test_clients_with_other_connection_settings_have_their_own(redis_url: str) -> None:
    one = RedisClient(RedisSettings(url=redis_url, key_prefix="a"))
    same = RedisClient(RedisSettings(url=redis_url, key_prefix="b", session_ttl_seconds=5))
    other = RedisClient(RedisSettings(url=redis_url, max_connections=3))
    try:
        for client in (one, same, other):
            await ping(client)
        assert one.transport is same.transport
        assert other.transport is not one.transport
        await one.close()
        await ping(same)  # still open for the other user
    finally:
        for client in (one, same, other):
            await client.close()


def test_each_event_loop_has_its_own_connections(redis_url: str) -> None:
    settings = RedisSettings(url=redis_url)
    seen: list[object] = []

    async def run() -> None:
        client = RedisClient(settings)
        try:
            await ping(client)
            seen.append(client.transport)
        finally:
            await client.close()
        assert shared.users(settings) == 0

    asyncio.run(run())
    asyncio.run(run())
    assert seen[0] is not seen[1]


async def test_a_closed_client_takes_the_connections_again_on_its_next_call(redis_url: str) -> None:
    client = RedisClient(RedisSettings(url=redis_url))
    try:
        await ping(client)
        first = client.transport
        await client.close()
        await ping(client)
        assert client.transport is not first
    finally:
        await client.close()
