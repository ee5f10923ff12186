"""`GET /healthz` and `GET /readyz` of the Slack HTTP server, with a backend up and down."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from ifriend_bench.cleanup import drop_tables

from ..servers import PrivateRedis
from .bots import MakeBot


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, object]:
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
        body = await response.json() if response.content_type == "application/json" else await response.text()
        return response.status, body


async def test_readyz_says_which_backend_fails_and_healthz_stays_up(
    make_bot: MakeBot, private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await make_bot(
        settings={
            "session": {"backend": "redis"},
            "backends": {"redis": {"url": private_redis.url, "timeout_seconds": 0.5}},
        }
    )
    transport = bot.channel.transport
    base = f"http://127.0.0.1:{transport.port}"
    caplog.set_level(logging.INFO, logger="ifriend_slack")
    async with aiohttp.ClientSession() as http:
        assert await get(http, base + "/healthz") == (200, "ok")
        assert await get(http, base + "/readyz") == (
            200,
            {
                "ready": True,
                "failing": [],
                "backends": {
                    "session": {"backend": "redis", "status": "ok"},
                    "memory": {"backend": "memory", "status": "ok"},
                },
            },
        )

        private_redis.stop()
        for _ in range(2):  # a prober asks again and again: one log line for the change
            status, body = await get(http, base + "/readyz")
            assert status == 503
            assert body == {
                "ready": False,
                "failing": ["redis"],
                "backends": {
                    "session": {"backend": "redis", "status": "BackendUnavailableError"},
                    "memory": {"backend": "memory", "status": "ok"},
                },
            }
        assert await get(http, base + "/healthz") == (200, "ok")
        [warning] = [r for r in caplog.records if r.levelno == logging.WARNING and "not ready" in r.message]
        assert "session backend 'redis': BackendUnavailableError: redis ping failed" in warning.message

        private_redis.start()  # same port
        status, body = await get(http, base + "/readyz")
        assert (status, body["ready"]) == (200, True)  # type: ignore[index]
    assert "ready: every backend answers" in caplog.text


async def test_a_tiered_store_stays_ready_without_redis(
    make_bot: MakeBot, private_redis: PrivateRedis, mysql_url: str
) -> None:
    import os

    bot = await make_bot(
        settings={
            "session": {"backend": "tiered"},
            "backends": {
                "redis": {"url": private_redis.url, "timeout_seconds": 0.5},
                "mysql": {"url": mysql_url,
                          "table_prefix": f"ifh_{os.getpid()}_"},
            },
        }
    )
    base = f"http://127.0.0.1:{bot.channel.transport.port}"
    async with aiohttp.ClientSession() as http:
        assert (await get(http, base + "/readyz"))[0] == 200
        private_redis.stop()  # served from MySQL meanwhile: still ready
        status, body = await get(http, base + "/readyz")
        assert (status, body["backends"]["session"]["status"]) == (200, "ok")  # type: ignore[index]
    await drop_tables(mysql_url, f"ifh_{os.getpid()}_")
