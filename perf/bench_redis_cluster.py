"""The session store on a Redis Cluster: ifriend's slot-aware lean exchange vs redis-py's
`RedisCluster`, side by side: `python perf/bench_redis_cluster.py [CLUSTER_URL [REDIS_URL]] [--quick]`
(defaults: $IFRIEND_TEST_REDIS_CLUSTER_URL and $IFRIEND_TEST_REDIS_URL).

The same `RedisStore` runs the same calls; only the transport under its client differs:
`ifriend_redis.cluster.Cluster` (one pipelined send per master, raw replies) or redis-py's
`RedisCluster` (`execute_command` for one op, a non-transactional `ClusterPipeline` for
several, its response callbacks removed so the store reads the same raw replies). The two
alternate call by call, so drift on this shared host hits both alike. Prints p50 / p99 (us)
per call and the ratio redis-py / lean, then appends of 50 sessions at once (events/s).
With a single-node URL, the same calls on the lean single-node path are a third target
(what running on a cluster costs).
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bench_redis_tier import record  # perf/ is on sys.path when a script here runs

from ifriend_bench.cleanup import delete_redis_keys
from ifriend.sessions import Revision, SessionKey
from ifriend_redis import RedisSettings, RedisStore

SAMPLES, WARMUP, CONCURRENT, CONCURRENT_APPENDS = 2000, 200, 50, 20
RAW = ("HGETALL", "ZRANGE", "EXISTS", "SET", "ZADD", "EXPIRE", "DEL", "ZREM", "LLEN", "HLEN",
       "EVALSHA", "PING", "SCRIPT LOAD")


class RedisPyCluster:
    """redis-py's `RedisCluster` behind the interface of `Cluster` (exchange, broadcast)."""

    def __init__(self, url: str, max_connections: int) -> None:
        from redis.asyncio import RedisCluster

        self.rc = RedisCluster.from_url(url, max_connections=max_connections)

    async def open(self) -> None:
        await self.rc.initialize()
        for command in RAW:  # raw replies, as the lean exchange gives them to the store
            self.rc.response_callbacks.pop(command, None)

    async def exchange(self, ops: Sequence[tuple[Any, ...]]) -> list[Any]:
        from redis.exceptions import ResponseError

        if len(ops) == 1:
            try:
                return [await self.rc.execute_command(*ops[0])]
            except ResponseError as exc:
                return [exc]
        pipe = self.rc.pipeline(transaction=False)
        for op in ops:
            pipe.execute_command(*op)
        return await pipe.execute(raise_on_error=False)

    async def broadcast(self, ops: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
        nodes = self.rc.get_primaries()
        return [[await self.rc.execute_command(*op, target_nodes=node) for op in ops] for node in nodes]

    async def close(self) -> None:
        await self.rc.aclose()


async def open_store(url: str, prefix: str, transport: str) -> RedisStore:
    store = RedisStore(RedisSettings(url=url, cluster=transport != "single", key_prefix=prefix))
    if transport == "redis-py":
        other = RedisPyCluster(url, store.settings.max_connections)
        await other.open()
        store.client._transport, store.client._release = other, other.close  # type: ignore[assignment]
    await store.connect()
    return store


class Figures:
    """p50 / p99 per call and target; ratios of redis-py, and of the single node, to lean."""

    def __init__(self, targets: list[str]) -> None:
        self.targets = targets
        self.rows: list[tuple[str, dict[str, list[float]]]] = []

    def add(self, name: str, samples: dict[str, list[float]]) -> None:
        self.rows.append((name, samples))

    def table(self) -> str:
        others = [t for t in self.targets if t != "lean"]
        head = f"{'call (p50 / p99, us)':<32}" + "".join(f"{t:>18}" for t in self.targets)
        head += "".join(f"{t + ' / lean':>22}" for t in others)
        lines = [head]
        for name, samples in self.rows:
            p = {t: (_p(sorted(samples[t]), 50), _p(sorted(samples[t]), 99)) for t in self.targets}
            line = f"{name:<32}" + "".join(f"{f'{p[t][0]:.0f} / {p[t][1]:.0f}':>18}" for t in self.targets)
            for t in others:
                ratio = f"{p[t][0] / p['lean'][0]:.2f}x / {p[t][1] / p['lean'][1]:.2f}x"
                line += f"{ratio:>22}"
            lines.append(line)
        return "\n".join(lines)


def _p(values: list[float], pct: int) -> float:
    if pct == 50:
        return statistics.median(values) * 1e6
    return values[min(len(values) - 1, int(len(values) * pct / 100))] * 1e6


async def side_by_side(
    calls: dict[str, Callable[[int], Awaitable[object]]], samples: int, warmup: int
) -> dict[str, list[float]]:
    """Each target's call alternately (order flipped every round), gc off while timing."""
    names = list(calls)
    out: dict[str, list[float]] = {name: [] for name in names}
    for i in range(warmup):
        for name in names:
            await calls[name](i)
    gc.disable()
    try:
        for i in range(samples):
            for name in names if i % 2 else reversed(names):
                started = time.perf_counter()
                await calls[name](warmup + i)
                out[name].append(time.perf_counter() - started)
    finally:
        gc.enable()
    return out


async def main(url: str, single_url: str | None, quick: bool) -> None:
    samples, warmup = (50, 10) if quick else (SAMPLES, WARMUP)
    prefix = f"bench-cluster-{uuid.uuid4().hex[:8]}"
    stores = {t: await open_store(url, prefix, t) for t in ("lean", "redis-py")}
    if single_url:
        stores["single"] = await open_store(single_url, prefix, "single")
    figures = Figures(list(stores))
    try:
        keys = {t: SessionKey("bench", f"user-{t}", uuid.uuid4().hex) for t in stores}
        revisions: dict[str, Revision] = {}
        for t, store in stores.items():
            created = await store.create(
                keys[t], incarnation="inc", state={}, app_delta={}, user_delta={}, created_at=time.time()
            )
            revision = created.revision
            for i in range(100):
                revision = (await store.append(keys[t], record(i), expected=revision)).revision
            revisions[t] = revision

        def per_target(make: Callable[[str, RedisStore], Callable[[int], Awaitable[object]]]) -> dict[str, Any]:
            return {t: make(t, store) for t, store in stores.items()}

        figures.add("probe (4 ops, 4 slots; n=100)", await side_by_side(per_target(
            lambda t, s: lambda i: s.probe(keys[t], revisions[t])), samples, warmup))
        figures.add("load (5 ops, 3 slots; n=100)", await side_by_side(per_target(
            lambda t, s: lambda i: s.load(keys[t])), samples // 4, warmup // 4))

        def appender(t: str, s: RedisStore) -> Callable[[int], Awaitable[object]]:
            async def append(i: int) -> None:
                revisions[t] = (await s.append(keys[t], record(1000 + i), expected=revisions[t])).revision
            return append

        figures.add("append (5 ops, 3 slots)", await side_by_side(per_target(appender), samples, warmup))

        def mirror(t: str, s: RedisStore) -> Callable[[int], Awaitable[object]]:
            async def call(i: int) -> None:
                after = Revision(revisions[t].incarnation, revisions[t].version + 1)
                assert await s.mirror_append(keys[t], record(100_000 + i), after)
                revisions[t] = after
            return call

        figures.add("mirror_append (1 op)", await side_by_side(per_target(mirror), samples, warmup))

        def creator(t: str, s: RedisStore) -> Callable[[int], Awaitable[object]]:
            async def call(i: int) -> None:
                key = SessionKey("bench", f"u{i % 20}-{t}", uuid.uuid4().hex)
                await s.create(key, incarnation="i", state={}, app_delta={}, user_delta={}, created_at=time.time())
            return call

        figures.add("create (7 ops, 3 slots)", await side_by_side(per_target(creator), samples // 2, warmup))
        for t, s in stores.items():
            for i in range(100):
                key = SessionKey(f"bench-list-{t}", f"u{i % 20}", uuid.uuid4().hex)
                await s.create(key, incarnation="l", state={}, app_delta={}, user_delta={}, created_at=time.time())
        figures.add("list (20 users, 100 sessions)", await side_by_side(per_target(
            lambda t, s: lambda i: s.list(f"bench-list-{t}", None)), max(10, samples // 20), 5))
        print(figures.table())
        print()
        rounds = 1 if quick else 5
        rates: dict[str, list[float]] = {t: [] for t in stores}
        for r in range(rounds):
            for t in (list(stores) if r % 2 else list(reversed(stores))):
                rates[t].append(await concurrent_appends(stores[t], t, quick))
        medians = {t: statistics.median(r) for t, r in rates.items()}
        print(f"{CONCURRENT} sessions appending at once (events/s, median of {rounds}): "
              + ", ".join(f"{t} {v:.0f}" for t, v in medians.items())
              + f"; lean / redis-py {medians['lean'] / medians['redis-py']:.2f}x")
    finally:
        for store in stores.values():
            await store.close()
        await delete_redis_keys(url, prefix, cluster=True)
        if single_url:
            await delete_redis_keys(single_url, prefix)


async def concurrent_appends(store: RedisStore, label: str, quick: bool) -> float:
    n = 5 if quick else CONCURRENT_APPENDS
    keys = [SessionKey("bench", f"c{i}-{label}", uuid.uuid4().hex) for i in range(CONCURRENT)]

    async def one(key: SessionKey) -> None:
        revision = (await store.create(
            key, incarnation="c", state={}, app_delta={}, user_delta={}, created_at=time.time()
        )).revision
        for i in range(n):
            revision = (await store.append(key, record(i), expected=revision)).revision

    started = time.perf_counter()
    await asyncio.gather(*(one(k) for k in keys))
    return CONCURRENT * n / (time.perf_counter() - started)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    url = args[0] if args else os.environ.get("IFRIEND_TEST_REDIS_CLUSTER_URL", "redis://127.0.0.1:7000/0")
    single = args[1] if len(args) > 1 else os.environ.get("IFRIEND_TEST_REDIS_URL")
    asyncio.run(main(url, single, quick="--quick" in sys.argv))
