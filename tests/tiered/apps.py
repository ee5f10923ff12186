"""Tiered Apps on the shared Redis and MariaDB, a prefix per test, everything dropped after: the
fixture `make_app` of the tiered and fault tests (through their conftest modules)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from ifriend import App, Settings
from ifriend_bench.cleanup import delete_redis_keys, drop_tables

MakeApp = Callable[..., Awaitable[App]]


@pytest.fixture
async def make_app(redis_url: str, mysql_url: str) -> AsyncIterator[MakeApp]:
    """`await make_app(redis={...}, tiered={...})`: an entered tiered App; every App made in
    one test shares the Redis key prefix and MySQL tables, like replicas of one deployment."""
    run = uuid.uuid4().hex[:10]
    prefixes = {"redis": f"ifriend-test-{run}", "mysql": f"ift_{run}_"}
    urls: dict[str, str] = {"redis": redis_url}
    async with AsyncExitStack() as stack:

        async def make(
            *, redis: dict[str, Any] | None = None, mysql: dict[str, Any] | None = None,
            tiered: dict[str, Any] | None = None,
        ) -> App:
            redis_options = {"url": redis_url, "key_prefix": prefixes["redis"], **(redis or {})}
            urls["redis"] = redis_options["url"]
            settings = Settings.model_validate(
                {
                    "session": {"backend": "tiered"},
                    "backends": {
                        "redis": redis_options,
                        "mysql": {"url": mysql_url, "table_prefix": prefixes["mysql"], **(mysql or {})},
                        "tiered": tiered or {},
                    },
                }
            )
            return await stack.enter_async_context(App(settings))

        try:
            yield make
        finally:
            await stack.aclose()
            await drop_tables(mysql_url, prefixes["mysql"])
            try:
                await delete_redis_keys(urls["redis"], prefixes["redis"])
            except Exception:  # a private redis the test stopped is gone anyway
                pass
