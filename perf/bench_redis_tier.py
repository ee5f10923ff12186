"""The Redis tier's hot paths, alone: `python perf/bench_redis_tier.py [REDIS_URL]`.

Prints p50/p99 (us) of `probe` (a cached copy that is current, session of 100
events) and `mirror_append`, next to the floors they are built on: a raw loopback
PING on a blocking socket, one redis-py connection round trip, redis-py's
`ping()` and the store's own `ping()`. Also this process's CPU time per call,
steadier than wall-clock figures on a busy host. Compare only figures of one run.

Then the commands of one `probe` sent both ways, calls alternated: over the store's
lean exchange, and over a redis-py `Pipeline` (transaction=False) on a pool of the
same settings; the ratio is what the lean exchange saves per round trip.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from google.adk.events.event import Event
from google.genai import types

from ifriend.sessions import EventRecord, Revision, SessionKey
from ifriend.sessions.codec import encode_event
from ifriend_redis import RedisSettings, RedisStore
from ifriend_redis.connections import Op

SAMPLES = 3000
WARMUP = 300


def record(i: int) -> EventRecord:
    event = Event(
        author="user",
        invocation_id=f"inv-{i}",
        content=types.Content(role="user", parts=[types.Part(text="hello " * 40)]),
    )
    return EventRecord(event, encode_event(event), {}, {}, {})


async def timed(
    call: Callable[[int], Awaitable[object]], samples: int = SAMPLES
) -> tuple[list[float], float]:
    """Wall-clock durations, and this process's CPU time per call (robust on a busy host)."""
    for i in range(WARMUP):
        await call(i)
    out = []
    gc.disable()
    try:
        cpu = time.process_time()
        for i in range(samples):
            started = time.perf_counter()
            await call(WARMUP + i)
            out.append(time.perf_counter() - started)
        cpu = (time.process_time() - cpu) / samples
    finally:
        gc.enable()
    return out, cpu


async def timed_alternately(
    calls: dict[str, Callable[[int], Awaitable[object]]], samples: int = SAMPLES
) -> dict[str, tuple[list[float], float]]:
    """`timed` for several calls at once, taking turns call by call (so that a busy host
    slows all of them alike); CPU time per call is summed call by call."""
    for i in range(WARMUP):
        for call in calls.values():
            await call(i)
    out: dict[str, list[float]] = {name: [] for name in calls}
    cpu = dict.fromkeys(calls, 0.0)
    gc.disable()
    try:
        for i in range(samples):
            for name, call in calls.items():
                cpu_started, started = time.process_time(), time.perf_counter()
                await call(WARMUP + i)
                out[name].append(time.perf_counter() - started)
                cpu[name] += time.process_time() - cpu_started
    finally:
        gc.enable()
    return {name: (out[name], cpu[name] / samples) for name in calls}


def show(name: str, timing: tuple[list[float], float]) -> tuple[float, float]:
    """Print one row; its p50 and CPU per call (seconds)."""
    durations, cpu = timing
    durations.sort()
    p50 = statistics.median(durations)
    p99 = durations[int(len(durations) * 0.99)]
    print(f"{name:<38} p50 {p50 * 1e6:7.1f} us   p99 {p99 * 1e6:7.1f} us   cpu {cpu * 1e6:6.1f} us/call")
    return p50, cpu


async def recorded_ops(store: RedisStore, call: Callable[[], Awaitable[object]]) -> list[Op]:
    """The commands `call` sends through the store's client (each is sent as well)."""
    sent: list[Op] = []
    execute = store.client.execute

    async def recording(ops: list[Op]) -> list[object]:
        sent.extend(ops)
        return await execute(ops)

    store.client.execute = recording  # type: ignore[method-assign]
    try:
        await call()
    finally:
        del store.client.execute
    return sent


async def lean_vs_pipeline(store: RedisStore, ops: list[Op]) -> None:
    """`ops` over the lean exchange and over a redis-py Pipeline, alternated."""
    redis = store.client.redis  # a redis-py client with a pool of its own, same settings

    async def lean(i: int) -> None:
        await store.client.exchange(ops)

    async def pipeline(i: int) -> None:
        pipe = redis.pipeline(transaction=False)
        for op in ops:
            pipe.execute_command(*op)
        await pipe.execute(raise_on_error=False)

    label = f"probe's {len(ops)} commands"
    timings = await timed_alternately({"lean": lean, "pipeline": pipeline})
    lean_p50, lean_cpu = show(f"{label}: lean exchange", timings["lean"])
    pipe_p50, pipe_cpu = show(f"{label}: redis-py Pipeline", timings["pipeline"])
    ratio = "  redis-py Pipeline / lean exchange"
    print(f"{ratio:<38} p50 {pipe_p50 / lean_p50:7.2f}x {'':20} cpu {pipe_cpu / lean_cpu:6.2f}x")


def raw_ping(url: str) -> tuple[list[float], float]:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port or 6379)) as s:
        out = []
        cpu = 0.0
        for i in range(WARMUP + SAMPLES):
            if i == WARMUP:
                cpu = time.process_time()
            started = time.perf_counter()
            s.sendall(b"PING\r\n")
            s.recv(16)
            if i >= WARMUP:
                out.append(time.perf_counter() - started)
    return out, (time.process_time() - cpu) / SAMPLES


async def main(url: str) -> None:
    show("raw socket PING (sync)", raw_ping(url))
    store = RedisStore(RedisSettings(url=url, key_prefix=f"bench-{uuid.uuid4().hex[:8]}"))
    await store.connect()
    try:
        pool = store.client.redis.connection_pool
        conn = await pool.get_connection()
        try:

            async def conn_ping(i: int) -> None:
                await conn.send_packed_command(conn.pack_command("PING"), check_health=False)
                await conn.read_response()

            show("redis-py connection PING", await timed(conn_ping))
        finally:
            await pool.release(conn)
        show("redis-py client.ping()", await timed(lambda i: store.client.redis.ping()))
        show("store.ping() (lean path)", await timed(lambda i: store.ping()))

        key = SessionKey("bench", "user", uuid.uuid4().hex)
        created = await store.create(
            key, incarnation="inc", state={}, app_delta={}, user_delta={}, created_at=time.time()
        )
        revision = created.revision
        for i in range(100):
            revision = (await store.append(key, record(i), expected=revision)).revision
        known = revision
        show("probe (current, n=100)", await timed(lambda i: store.probe(key, known)))
        behind = Revision(known.incarnation, known.version - 1)
        show("probe (behind by 1, n=100)", await timed(lambda i: store.probe(key, behind)))
        await lean_vs_pipeline(store, await recorded_ops(store, lambda: store.probe(key, known)))

        records = [record(1000 + i) for i in range(WARMUP + SAMPLES)]
        version = revision.version

        async def mirror(i: int) -> None:
            nonlocal version
            version += 1
            assert await store.mirror_append(key, records[i], Revision("inc", version))

        show("mirror_append (n>=100)", await timed(mirror))
        sk = store.keys.session(key)
        await store.client.redis.delete(*sk.all())
    finally:
        await store.close()


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "IFRIEND_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"
    )
    asyncio.run(main(url))
