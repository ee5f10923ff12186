"""Fixtures of the Redis store tests: a real redis-server (IFRIEND_TEST_REDIS_URL).

Each test uses its own key prefix and deletes every key under it afterwards.
Without IFRIEND_TEST_REDIS_URL the tests are skipped, unless CI is set: then they fail.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from redis_helpers import CommandLog

from ifriend.sessions import SessionKey, SessionService
from tests.conftest import server_url


@pytest.fixture(scope="session")
def redis_url() -> str:
    return server_url("IFRIEND_TEST_REDIS_URL")


MakeStore = Callable[..., Awaitable[Any]]


@pytest.fixture
async def make_store(redis_url: str) -> AsyncIterator[MakeStore]:
    """`await make_store(timeout_seconds=0.5)`: a connected store under this test's prefix."""
    from ifriend_redis import RedisSettings, RedisStore

    prefix = f"ifriend-test-{uuid.uuid4().hex}"
    stores: list[RedisStore] = []

    async def make(connect: bool = True, **overrides: Any) -> RedisStore:
        settings = RedisSettings(url=redis_url, key_prefix=prefix, **overrides)
        store = RedisStore(settings)
        stores.append(store)
        if connect:
            await store.connect()
        return store

    yield make
    cleaner = RedisStore(RedisSettings(url=redis_url, key_prefix=prefix))
    try:
        r = cleaner.client.redis
        keys = [k async for k in r.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await r.delete(*keys)
    finally:
        await cleaner.close()
        for store in stores:
            await store.close()


@pytest.fixture
async def store(make_store: MakeStore) -> Any:
    return await make_store()


@pytest.fixture
def service(store: Any) -> SessionService:
    return SessionService(store)


@pytest.fixture
def key() -> SessionKey:
    return SessionKey("app", "user", f"s-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def command_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[CommandLog]:
    """Counts what the client sends, read back from the bytes on their way to the socket
    (no MONITOR on a shared server): one round trip per send, every command in it."""
    import hiredis
    from redis.asyncio.connection import AbstractConnection

    log = CommandLog()
    send_packed = AbstractConnection.send_packed_command

    async def counting_send(self: Any, command: Any, check_health: bool = True) -> None:
        if log.recording:
            log.round_trips += 1
            data = command.encode() if isinstance(command, str) else command
            reader = hiredis.Reader()
            reader.feed(data if isinstance(data, bytes) else b"".join(data))
            while (sent := reader.gets()) is not False:
                log.commands.append(sent[0].decode().upper())
        await send_packed(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting_send)
    yield log
