"""The Redis tier's hot paths, alone: `python perf/bench_redis_tier.py [REDIS_URL]`.

Prints p50/p99 (us) of `probe` (a cached copy that is current, session of 100
events) and `mirror_append`, next to the floors they are built on: a raw loopback
PING on a blocking socket, one redis-py connection round trip, redis-py's
`ping()` and the store's own `ping()`. Also this process's CPU time per call,
steadier than wall-clock figures on a busy host. Compare only figures of one run.
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


def show(name: str, timing: tuple[list[float], float]) -> None:
    durations, cpu = timing
    durations.sort()
    p50 = statistics.median(durations) * 1e6
    p99 = durations[int(len(durations) * 0.99)] * 1e6
    print(f"{name:<30} p50 {p50:7.1f} us   p99 {p99:7.1f} us   cpu {cpu * 1e6:6.1f} us/call")


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
