"""Redis faults under load: no acknowledged event is ever hidden, lost or doubled.

Every test runs `Workload` (writers and readers on several tiered replicas) through one
fault and prints `lost_acked / stale_reads / dup / max_op_s`. Deadlines are short
(Redis 0.5 s, so a lease of 375 ms) to keep each test within seconds.
"""

from __future__ import annotations

import asyncio
import json

from ..tiered.test_replicas import Replica
from .proxy import FaultyProxy
from .workload import APP, USER, Reader, Workload

REDIS = {"timeout_seconds": 0.5}
TIERED = {"redis_retry_seconds": 0.2}
MAX_OP_SECONDS = 5.0


class ProcessReader:
    """A replica in its own process (no state shared with the test's), read cold."""

    def __init__(self, name: str, replica: Replica) -> None:
        self.name = name
        self.replica = replica

    async def read(self, session_id: str) -> list[str]:
        answer = await self.replica.ask(op="get", session=session_id, app=APP, user=USER, cold=True)
        return answer["texts"]


async def replicas(make_app, redis_url: str, *, writer_url: str | None = None):
    """A writer (through `writer_url` if given) and a cold reader on `redis_url`."""
    writer = await make_app(redis={**REDIS, "url": writer_url or redis_url}, tiered=TIERED)
    other = await make_app(redis={**REDIS, "url": redis_url}, tiered=TIERED)
    return writer, [Reader("writer", writer), Reader("other-cold", other, cold=True)]


async def test_connection_resets_shorter_than_the_lease(make_app, redis_url):
    proxy = FaultyProxy("127.0.0.1", int(redis_url.rsplit(":", 1)[1].split("/")[0]))
    await proxy.start()
    try:
        writer, readers = await replicas(make_app, redis_url, writer_url=proxy.url())
        settings = writer.settings.model_dump(mode="json")
        settings["backends"]["redis"]["url"] = redis_url
        process = await Replica.start(settings)
        try:
            async def blips() -> None:
                for _ in range(5):
                    await proxy.blip(0.15)  # far shorter than the 375 ms lease
                    await asyncio.sleep(0.1)

            workload = Workload("reset", writer, [*readers, ProcessReader("process", process)])
            result = await workload.run(blips)
        finally:
            await process.stop()
    finally:
        await proxy.close()
    assert proxy.resets >= 5
    result.check(max_op_s=MAX_OP_SECONDS)


async def test_one_replica_cut_off_from_redis_while_another_is_not(make_app, redis_url):
    proxy = FaultyProxy("127.0.0.1", int(redis_url.rsplit(":", 1)[1].split("/")[0]))
    await proxy.start()
    try:
        writer, readers = await replicas(make_app, redis_url, writer_url=proxy.url())
        workload = Workload("cut-off", writer, readers)
        result = await workload.run(lambda: proxy.blip(2.0))
    finally:
        await proxy.close()
    result.check(max_op_s=MAX_OP_SECONDS)


async def test_redis_paused(make_app, private_redis):
    writer, readers = await replicas(make_app, private_redis.url)

    async def pause() -> None:
        private_redis.pause()
        try:
            await asyncio.sleep(1.2)
        finally:
            private_redis.resume()

    result = await Workload("sigstop", writer, readers).run(pause)
    result.check(max_op_s=MAX_OP_SECONDS)


async def test_redis_killed_and_restarted_empty(make_app, private_redis):
    writer, readers = await replicas(make_app, private_redis.url)

    async def kill_and_restart() -> None:
        private_redis.kill()
        await asyncio.sleep(0.5)
        private_redis.start()

    fresh = await make_app(redis={**REDIS, "url": private_redis.url}, tiered=TIERED)
    result = await Workload("kill-9", writer, readers).run(
        kill_and_restart, final_readers=[Reader("fresh", fresh, cold=True)]
    )
    result.check(max_op_s=MAX_OP_SECONDS)


async def test_flushall(make_app, private_redis):
    writer, readers = await replicas(make_app, private_redis.url)
    client = writer.session_service.store.redis.client.redis

    async def flushall() -> None:
        await client.flushall()

    result = await Workload("flushall", writer, readers).run(flushall)
    result.check(max_op_s=MAX_OP_SECONDS)


async def test_eviction_under_maxmemory(make_app, private_redis):
    private_redis.stop()
    private_redis.extra_args = ["--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru"]
    private_redis.start()
    writer, readers = await replicas(make_app, private_redis.url)
    client = writer.session_service.store.redis.client.redis

    async def fill() -> None:
        filler = b"x" * 16384
        for i in range(600):  # ~10 MB through a 4 MB Redis: most older keys are evicted
            await client.set(f"filler:{i}", filler)
        assert (await client.info("stats"))["evicted_keys"] > 0

    result = await Workload("eviction", writer, readers).run(fill)
    result.check(max_op_s=MAX_OP_SECONDS)
