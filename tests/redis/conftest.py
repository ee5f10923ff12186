"""Fixtures of the Redis store tests: a real redis-server (IFRIEND_TEST_REDIS_URL).

Each test uses its own key prefix and deletes every key under it afterwards.
Without IFRIEND_TEST_REDIS_URL the tests are skipped, unless CI is set: then they fail.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from ifriend.sessions import SessionKey, SessionService

from .helpers import CommandLog

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
def command_log(monkeypatch: pytest.MonkeyPatch) -> CommandLog:
    """Counts what the client sends while `recording` (see `CommandLog.listen`)."""
    log = CommandLog()
    log.listen(monkeypatch)
    return log
