"""MariaDB killed (SIGKILL) under load: appends fail with typed errors while it is down, and
nothing acknowledged is lost once it is back (crash recovery of committed transactions)."""

from __future__ import annotations

import asyncio

import pytest

from ifriend import App, Settings

from .mariadb import PrivateMariaDB
from .workload import Reader, Workload


@pytest.fixture
def private_mariadb(tmp_path):
    server = PrivateMariaDB(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_mariadb_killed_mid_load(private_mariadb, private_redis):
    settings = Settings.model_validate(
        {
            "session": {"backend": "tiered"},
            "backends": {
                "redis": {"url": private_redis.url, "timeout_seconds": 0.5},
                "mysql": {"url": private_mariadb.url, "timeout_seconds": 1.0},
                "tiered": {"redis_retry_seconds": 0.2},
            },
        }
    )
    async with App(settings) as writer, App(settings) as other:
        async def kill_and_restart() -> None:
            private_mariadb.kill()
            await asyncio.sleep(1.5)
            failed_before = workload.result.failed_calls
            assert failed_before > 0  # appends failed (typed) while it was down
            private_mariadb.start()

        workload = Workload("mariadb-kill", writer, [Reader("writer", writer), Reader("other", other, cold=True)])
        result = await workload.run(kill_and_restart)
    async with App(settings) as fresh:
        for session_id in workload.session_ids:
            got = await Reader("fresh", fresh, cold=True).read(session_id)
            assert got[: len(workload.acked[session_id])] == [t for _, t in workload.acked[session_id]]
    assert "typed:BackendUnavailableError" in result.errors or "typed:BackendTimeoutError" in result.errors
    result.check(max_op_s=5.0)
