"""`ifriend bench sessions`: every session backend against ADK's own services, side by side.

Targets: ifriend's `memory`, `redis`, `mysql` and `tiered` backends (and `redis-cluster`,
`tiered-cluster` given a cluster), and as baselines ADK's `DatabaseSessionService` on the
same MariaDB and ADK's `InMemorySessionService`. Each figure is measured round by round
with the targets interleaved (a durable commit's cost drifts within minutes here), and
`tiered`'s figures are paired with their physical floors (`floors`), timed right after
each measured call: an append with a durable single-row commit plus an RPUSH, an LRU-hit
read with an RPUSH. The targets of issue 15 are ratios to those floors or to ADK's
database service, measured in the same run (`evaluate`).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from google.adk.events.event import Event
from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig
from google.adk.sessions.in_memory_session_service import InMemorySessionService
from google.adk.sessions.session import Session
from google.genai import types

from ifriend.plugin_api import App, SessionKey, Settings, tune_gc

from . import overhead
from .cleanup import delete_redis_keys, drop_tables, execute
from .collector import bench_collector
from .floors import Floors, MySQLFloor, RedisFloor
from .replicas import bench_replicas
from .timing import Report, timed

APP = "bench"
USER = "bench-user"
BASELINES = ("adk-db", "adk-memory")
TIERED = "tiered"
FLAT = "append, shortest vs longest session [flat]"
WORDS = "the quick brown fox jumps over a lazy dog while ifriend keeps every word it hears".split()


@dataclass(frozen=True)
class BenchConfig:
    redis_url: str
    mysql_url: str
    redis_cluster_url: str | None = None  # adds redis-cluster and tiered-cluster targets
    lengths: tuple[int, ...] = (10, 100, 1000, 10000)
    get_lengths: tuple[int, ...] = (10, 100, 1000)
    recent_length: int = 10000
    samples: int = 200
    rounds: int = 10
    concurrent_sessions: int = 50
    concurrent_appends: int = 20
    adk_db_max_length: int = 1000
    telemetry_samples: int = 2000
    telemetry_rounds: int = 2000  # one operation per target per round: the finest interleaving
    replica_sessions: int = 50
    replica_appends: int = 20
    gc_held_events: int = 100_000  # a full LRU's worth (256 MB)
    gc_appends: int = 2000
    sessions_per_length: int | None = None  # appended to in turn at each length (None: by length)

    @classmethod
    def quick(cls, redis_url: str, mysql_url: str, redis_cluster_url: str | None = None) -> BenchConfig:
        """A small run that exercises every figure (for tests, not for figures)."""
        return cls(
            redis_url,
            mysql_url,
            redis_cluster_url,
            lengths=(10, 100),
            get_lengths=(10, 100),
            recent_length=100,
            samples=10,
            rounds=2,
            concurrent_sessions=5,
            concurrent_appends=3,
            telemetry_samples=20,
            telemetry_rounds=20,
            replica_sessions=4,
            replica_appends=3,
            gc_held_events=1000,
            gc_appends=10,
            sessions_per_length=2,
        )

    def sessions_for(self, n: int) -> int:
        """How many sessions of `n` events the appends rotate over."""
        if self.sessions_per_length is not None:
            return self.sessions_per_length
        return 2 if n >= 10000 else 5 if n >= 1000 else 20


def make_event(i: int) -> Event:
    author = "user" if i % 2 == 0 else "bench-agent"
    words = [WORDS[(i * 7 + k) % len(WORDS)] for k in range(40 if author == "user" else 90)]
    return Event(
        author=author,
        invocation_id=f"inv-{i // 2}",
        content=types.Content(
            role="user" if author == "user" else "model", parts=[types.Part(text=" ".join(words))]
        ),
    )


@dataclass
class Target:
    """One service under test and the sessions it holds, by length."""

    name: str
    service: BaseSessionService
    max_length: int = 10**9
    sessions: dict[int, list[Session]] = field(default_factory=dict)
    store: Any = None  # the TieredStore, to empty its LRU or Redis between reads

    async def append(self, session: Session, i: int) -> None:
        await self.service.append_event(session, make_event(i))

    async def prefill(self, n: int, count: int, tag: str) -> list[Session]:
        """`count` sessions of `n` events, created one by one (ADK's database service races
        on concurrent creates of a new app's first rows), filled concurrently."""
        made = [
            await self.service.create_session(app_name=APP, user_id=USER, session_id=f"{tag}-n{n}-{k}")
            for k in range(count)
        ]

        async def fill(session: Session) -> None:
            for i in range(n):
                await self.append(session, i)

        await asyncio.gather(*(fill(s) for s in made))
        self.sessions[n] = made
        return made


def backends(config: BenchConfig, run_id: str) -> dict[str, dict[str, Any]]:
    """The `[backends]` tables of this run (its own key and table prefixes)."""
    return {
        "redis": {"url": config.redis_url, "key_prefix": f"ifriend-bench-{run_id}"},
        "mysql": {"url": config.mysql_url, "table_prefix": f"ifbench_{run_id}_"},
    }


async def open_targets(config: BenchConfig, stack: AsyncExitStack, run_id: str) -> list[Target]:
    redis, mysql = backends(config, run_id).values()
    # Cleanups first: they run after every App below has closed (the stack unwinds LIFO).
    stack.push_async_callback(drop_tables, config.mysql_url, mysql["table_prefix"])
    stack.push_async_callback(delete_redis_keys, config.redis_url, redis["key_prefix"])
    on_cluster = None
    if config.redis_cluster_url:
        on_cluster = {"url": config.redis_cluster_url, "cluster": True, "key_prefix": redis["key_prefix"]}
        stack.push_async_callback(
            delete_redis_keys, config.redis_cluster_url, redis["key_prefix"], cluster=True
        )
    targets = []
    for name, backend, redis_table in (
        ("memory", "memory", redis),
        ("redis", "redis", redis),
        ("mysql", "mysql", redis),
        ("tiered", "tiered", redis),
        ("redis-cluster", "redis", on_cluster),
        ("tiered-cluster", "tiered", on_cluster),
    ):
        if redis_table is None:
            continue
        settings = Settings.model_validate(
            {"session": {"backend": backend}, "backends": {"redis": redis_table, "mysql": mysql}}
        )
        app = await stack.enter_async_context(App(settings))
        store = getattr(app.session_service, "store", None)
        targets.append(Target(name, app.session_service, store=store if name == "tiered" else None))
    targets.append(Target("adk-db", await _adk_database(config, stack, run_id), config.adk_db_max_length))
    targets.append(Target("adk-memory", InMemorySessionService()))
    return targets


async def _adk_database(config: BenchConfig, stack: AsyncExitStack, run_id: str) -> BaseSessionService:
    from google.adk.sessions.database_session_service import DatabaseSessionService

    parts = urlsplit(config.mysql_url)
    database = f"{parts.path.lstrip('/')}_adk_{run_id}"
    await execute(config.mysql_url, f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    stack.push_async_callback(execute, config.mysql_url, f"DROP DATABASE IF EXISTS `{database}`")
    url = parts._replace(scheme="mysql+asyncmy", path=f"/{database}").geturl()
    service = DatabaseSessionService(db_url=url)
    stack.push_async_callback(service.close)
    return service


Runner = Callable[[int], Awaitable[None]]
Hook = Callable[[], Awaitable[None]]


async def interleave(
    report: Report,
    figure: str,
    runners: dict[str, Runner],
    *,
    samples: int,
    rounds: int,
    before: dict[str, Hook] | None = None,
    after: dict[str, Hook] | None = None,
) -> None:
    """Take `samples` timings of each runner, `samples / rounds` at a time, rotating the order.

    `before[name]` runs untimed before each call of runner `name` (to set a state up);
    `after[name]` right after it (to time a paired floor)."""
    per_round = max(1, samples // rounds)
    names = list(runners)
    counter = itertools.count()
    before, after = before or {}, after or {}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            series = report.series(figure, name)
            for _ in range(per_round):
                i = next(counter)
                if name in before:
                    await before[name]()
                await series.measure(lambda: runners[name](i))
                if name in after:
                    await after[name]()


async def bench_appends(report: Report, targets: list[Target], floors: Floors, config: BenchConfig) -> None:
    """Appends at each length, every target interleaved; `tiered` paired with a commit + RPUSH."""
    for n in config.lengths:
        active = [t for t in targets if n <= t.max_length]
        for t in active:
            await t.prefill(n, config.sessions_for(n), f"append-{uuid.uuid4().hex[:6]}")
        runners: dict[str, Runner] = {}
        for t in active:
            cycle = itertools.cycle(t.sessions[n])
            runners[t.name] = lambda i, t=t, cycle=cycle: t.append(next(cycle), 10**6 + i)
        figure = f"append n={n}"
        await interleave(
            report, figure, runners, samples=config.samples, rounds=config.rounds,
            after={TIERED: lambda: floors.pair_append(report, figure)},
        )
        skipped = [t.name for t in targets if n > t.max_length]
        if skipped:
            report.notes.append(
                f"append n={n}: {', '.join(skipped)} not measured (filling sessions this long "
                "one append at a time takes too long)"
            )


async def bench_flatness(report: Report, targets: list[Target], config: BenchConfig) -> None:
    """`tiered` appends to its shortest and its longest sessions, interleaved: the same
    moment's costs, whatever the process's heap has grown to meanwhile."""
    tiered = next(t for t in targets if t.name == TIERED)
    short, long = min(config.lengths), max(config.lengths)
    runners: dict[str, Runner] = {}
    for n in (short, long):
        cycle = itertools.cycle(tiered.sessions[n])
        runners[f"{TIERED} n={n}"] = lambda i, cycle=cycle: tiered.append(next(cycle), 3 * 10**6 + i)
    await interleave(report, FLAT, runners, samples=config.samples, rounds=config.rounds)


async def bench_reads(report: Report, targets: list[Target], floors: Floors, config: BenchConfig) -> None:
    """Reads at each length, every target interleaved; `tiered` (an LRU hit) paired with an RPUSH.

    Then `tiered` with its LRU entry dropped (Redis answers), and with Redis's copy
    dropped too (MySQL answers): the dropping happens before the timed call."""
    for n in config.get_lengths:
        runners: dict[str, Runner] = {}
        for t in targets:
            if n not in t.sessions:
                continue
            session = t.sessions[n][0]
            runners[t.name] = lambda i, t=t, s=session: _get(t, s)
        figure = f"get n={n}"
        await interleave(
            report, figure, runners, samples=config.samples, rounds=config.rounds,
            after={TIERED: lambda: floors.pair_rpush(report, figure)},
        )
        tiered = next((t for t in targets if t.store is not None and n in t.sessions), None)
        if tiered is None:
            continue
        session = tiered.sessions[n][0]
        key = SessionKey(APP, USER, session.id)

        async def drop_lru(t: Target = tiered) -> None:
            t.store.cache.discard(key)

        async def drop_redis(t: Target = tiered) -> None:
            t.store.cache.discard(key)
            await t.store.redis.invalidate(key)

        # ADK's database service beside it again: the speed-up is a ratio taken in one figure.
        cold_runners = {TIERED: runners[TIERED]} | {b: runners[b] for b in ("adk-db",) if b in runners}
        for cold, drop in (("lru cold", drop_lru), ("redis cold", drop_redis)):
            await interleave(
                report, f"get n={n} [{cold}]", cold_runners, samples=config.samples,
                rounds=config.rounds, before={TIERED: drop},
            )


async def _get(target: Target, session: Session, config: GetSessionConfig | None = None) -> None:
    found = await target.service.get_session(
        app_name=APP, user_id=USER, session_id=session.id, config=config
    )
    assert found is not None and (config is not None or len(found.events) >= 1)


async def bench_recent(report: Report, targets: list[Target], config: BenchConfig) -> None:
    n = config.recent_length
    recent = GetSessionConfig(num_recent_events=20)
    runners = {}
    for t in targets:
        if n in t.sessions:
            runners[t.name] = lambda i, t=t, s=t.sessions[n][0]: _get(t, s, recent)
        elif n <= t.max_length:
            made = await t.prefill(n, 1, f"recent-{uuid.uuid4().hex[:6]}")
            runners[t.name] = lambda i, t=t, s=made[0]: _get(t, s, recent)
    await interleave(
        report, f"get n={n} recent=20", runners, samples=config.samples, rounds=config.rounds
    )


async def bench_concurrency(report: Report, targets: list[Target], config: BenchConfig) -> None:
    figure = f"{config.concurrent_sessions} sessions appending concurrently"
    totals: dict[str, list[float]] = {t.name: [] for t in targets}
    cpu: dict[str, list[float]] = {t.name: [] for t in targets}
    events = config.concurrent_sessions * config.concurrent_appends
    for r in range(2):
        order = targets if r == 0 else list(reversed(targets))
        for t in order:
            sessions = await t.prefill(10, config.concurrent_sessions, f"conc-{uuid.uuid4().hex[:6]}")

            async def writer(session: Session, t: Target = t) -> None:
                for i in range(config.concurrent_appends):
                    await t.append(session, 100 + i)

            started_cpu, start = time.process_time(), time.perf_counter()
            await asyncio.gather(*(writer(s) for s in sessions))
            elapsed = time.perf_counter() - start
            totals[t.name].append(events / elapsed)
            cpu[t.name].append((time.process_time() - started_cpu) / events)
    for name, rates in totals.items():
        report.rates[(figure, name)] = sum(rates) / len(rates)
    report.notes.append(
        "CPU per append of this process, concurrent: "
        + ", ".join(f"{name} {statistics.median(v) * 1e3:.2f} ms" for name, v in cpu.items())
    )


def evaluate(report: Report, config: BenchConfig) -> None:
    """The targets of issue 15, each a ratio to a floor or a baseline timed in this run."""
    lengths = config.lengths
    first, last = min(lengths), max(lengths)
    report.check(
        f"tiered append p50 n={last} / n={first}, interleaved (flat in n)",
        report.p50(FLAT, f"{TIERED} n={last}") / report.p50(FLAT, f"{TIERED} n={first}"),
        1.15,
    )
    n = _at_most(1000, lengths)
    append = f"append n={n}"
    report.check(
        f"tiered append p50 n={n} / paired commit+rpush floor",
        report.ratio(append, TIERED, Floors.COMMIT_RPUSH), 1.3,
    )
    report.check(f"tiered append p99 / p50 n={n}", report.ratio(append, TIERED, TIERED, at=0.99), 3.0)
    n = _at_most(1000, config.get_lengths)
    report.check(
        f"tiered get p50 n={n}, LRU hit / paired rpush floor",
        report.ratio(f"get n={n}", TIERED, Floors.RPUSH), 1.3,
    )
    report.check(
        f"adk-db get / tiered get n={n}, LRU cold (speed-up)",
        report.p50(f"get n={n} [lru cold]", "adk-db") / report.p50(f"get n={n} [lru cold]", TIERED),
        5.0,
        higher_is_better=True,
    )
    report.check(
        f"tiered get p50 n={config.recent_length} recent=20 (ms)",
        report.p50(f"get n={config.recent_length} recent=20", TIERED) * 1e3,
        1.0,
    )
    figure = f"{config.concurrent_sessions} sessions appending concurrently"
    report.check(
        "tiered / adk-db events per second, concurrent (speed-up)",
        report.rates.get((figure, TIERED), math.nan) / report.rates.get((figure, "adk-db"), math.nan),
        10.0,
        higher_is_better=True,
    )
    overhead.check(report)


def _at_most(limit: int, lengths: tuple[int, ...]) -> int:
    return max((n for n in lengths if n <= limit), default=lengths[0])


async def run(config: BenchConfig, *, progress: Callable[[str], None] = lambda _: None) -> Report:
    """Run every figure and return the report (servers' data is removed afterwards).

    The collector of this process is tuned as `ifriend run` tunes a bot's (`tune_gc`):
    with CPython's defaults, full collections of the millions of objects the targets and
    baselines hold here take seconds (the collector figure shows both settings)."""
    tune_gc()
    run_id = uuid.uuid4().hex[:8]
    report = Report("sessions")
    async with AsyncExitStack() as stack:
        targets = await open_targets(config, stack, run_id)
        floors = Floors(
            MySQLFloor(config.mysql_url, f"ifbench_{run_id}_floor"),
            RedisFloor(config.redis_url, f"ifriend-bench-{run_id}-floor"),
        )
        await floors.open()
        stack.push_async_callback(floors.close)
        progress("measuring appends")
        await bench_appends(report, targets, floors, config)
        await bench_flatness(report, targets, config)
        progress("measuring reads")
        await bench_reads(report, targets, floors, config)
        progress("measuring recent events")
        await bench_recent(report, targets, config)
        progress("measuring concurrency")
        await bench_concurrency(report, targets, config)
        # Worker processes open tiered Apps of their own on this run's keys and tables.
        tiered = {"session": {"backend": "tiered"}, "backends": backends(config, run_id)}
        progress("measuring replicas (1 and 2 processes)")
        await bench_replicas(
            report, tiered, sessions=config.replica_sessions, appends=config.replica_appends
        )
        progress("measuring appends under three garbage collector settings (a process each)")
        await bench_collector(report, tiered, held=config.gc_held_events, appends=config.gc_appends)
        progress("measuring telemetry overhead")
        with tempfile.TemporaryDirectory(prefix="ifriend-bench-otel-") as folder:
            await overhead.bench_telemetry(report, targets, config, folder)
    evaluate(report, config)
    return report
