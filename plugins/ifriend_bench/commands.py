"""`ifriend bench ...`: each benchmark a thin command over its module.

Every command takes the same servers, `--quick` and `--json` (`bench_command`), and
prints and writes its report the same way (`run_and_report`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from .timing import Report


@click.group("bench")
def bench_group() -> None:
    """Benchmarks against baselines measured in the same run (needs `make servers`)."""


def bench_command(name: str) -> Callable[[Callable[..., Any]], click.Command]:
    """`ifriend bench NAME`, with the options every benchmark takes: the servers,
    `--quick` and `--json`."""

    def decorate(fn: Callable[..., Any]) -> click.Command:
        for option in reversed(
            [
                click.option("--redis-url", envvar="IFRIEND_TEST_REDIS_URL", required=True,
                             help="Redis to use [env IFRIEND_TEST_REDIS_URL]."),
                click.option("--mysql-url", envvar="IFRIEND_TEST_MYSQL_URL", required=True,
                             help="MariaDB/MySQL to use [env IFRIEND_TEST_MYSQL_URL]."),
                click.option("--quick", is_flag=True, help="A tiny run that exercises every figure."),
                click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
                             help=f"Where to write the JSON report (default perf/results/{name}-TIME.json)."),
            ]
        ):
            fn = option(fn)
        return bench_group.command(name)(fn)

    return decorate


def run_and_report(
    run: Callable[..., Awaitable[Report]], config: Any, *, baselines: tuple[str, ...], json_path: str | None
) -> None:
    """Run one benchmark (progress on stderr), print its table, checks and notes, write its JSON."""
    report = asyncio.run(run(config, progress=lambda step: click.echo(f"{step}...", err=True)))
    click.echo(report.table(baselines))
    click.echo()
    click.echo(report.check_lines())
    for note in report.notes:
        click.echo(f"note: {note}")
    path = Path(json_path or f"perf/results/{report.title}-{time.strftime('%Y%m%d-%H%M%S')}.json")
    report.write(path)
    click.echo(f"wrote {path}")


@bench_command("sessions")
@click.option("--redis-cluster-url", envvar="IFRIEND_TEST_REDIS_CLUSTER_URL", default=None,
              help="A Redis Cluster node: adds redis-cluster and tiered-cluster "
              "[env IFRIEND_TEST_REDIS_CLUSTER_URL].")
def bench_sessions_command(
    redis_url: str, mysql_url: str, redis_cluster_url: str | None, quick: bool, json_path: str | None
) -> None:
    """Session backends vs ADK's DatabaseSessionService and InMemorySessionService."""
    from . import sessions

    config = (sessions.BenchConfig.quick if quick else sessions.BenchConfig)(
        redis_url, mysql_url, redis_cluster_url
    )
    run_and_report(sessions.run, config, baselines=sessions.BASELINES, json_path=json_path)


@bench_command("memory")
@click.option("--entries", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Memories of the user whose searches are timed.")
def bench_memory_command(
    redis_url: str, mysql_url: str, entries: int, quick: bool, json_path: str | None
) -> None:
    """Memory backends vs ADK's InMemoryMemoryService: add and search, p50/p99."""
    from . import memory

    if quick:
        config = memory.BenchConfig.quick(redis_url, mysql_url)
    else:
        config = memory.BenchConfig(redis_url, mysql_url, entries=entries)
    run_and_report(memory.run, config, baselines=(memory.BASELINE,), json_path=json_path)


@bench_command("turn")
@click.option("--turns", type=click.IntRange(min=2), default=100, show_default=True,
              help="Turns per thread.")
@click.option("--threads", type=click.IntRange(min=1), default=3, show_default=True,
              help="Threads per backend.")
@click.option("--backend", "backends", multiple=True,
              type=click.Choice(["memory", "redis", "mysql", "tiered"]),
              help="Backends to measure (repeatable; default all).")
def bench_turn_command(
    redis_url: str, mysql_url: str, turns: int, threads: int, backends: tuple[str, ...],
    quick: bool, json_path: str | None,
) -> None:
    """A Slack turn end to end (signed event in -> reply at a fake Slack), per backend."""
    from . import turn

    if quick:
        config = turn.BenchConfig.quick(redis_url, mysql_url)
    else:
        last = min(10, max(1, turns // 10))
        config = turn.BenchConfig(redis_url, mysql_url, turns=turns, threads=threads, last=last)
    if backends:
        config = dataclasses.replace(config, backends=backends)
    run_and_report(turn.run, config, baselines=(turn.FLOOR,), json_path=json_path)
