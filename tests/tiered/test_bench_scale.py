"""The scale figures of `ifriend bench sessions`: cluster targets and the 1-vs-2-process run."""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack

from ifriend_bench.replicas import FIGURE, bench_replicas
from ifriend_bench.sessions import BenchConfig, backends, open_targets
from ifriend_bench.timing import Report


async def test_the_cluster_targets_run_beside_the_others(redis_url, mysql_url, redis_cluster_url):
    config = BenchConfig(redis_url, mysql_url, redis_cluster_url)
    async with AsyncExitStack() as stack:
        targets = await open_targets(config, stack, uuid.uuid4().hex[:8])
        names = [t.name for t in targets]
        assert {"redis-cluster", "tiered-cluster"} <= set(names)
        cluster = next(t for t in targets if t.name == "tiered-cluster")
        [session] = await cluster.prefill(3, 1, "scale")
        got = await cluster.service.get_session(app_name=session.app_name, user_id=session.user_id,
                                                session_id=session.id)
        assert len(got.events) == 3


async def test_one_and_two_processes_are_measured_in_one_run(redis_url, mysql_url):
    run_id = uuid.uuid4().hex[:8]
    report = Report("scale")
    config = BenchConfig(redis_url, mysql_url)
    settings = {"session": {"backend": "tiered"}, "backends": backends(config, run_id)}
    try:
        await bench_replicas(report, settings, sessions=2, appends=2, rounds=1)
    finally:
        from ifriend_bench.cleanup import delete_redis_keys, drop_tables

        await delete_redis_keys(redis_url, settings["backends"]["redis"]["key_prefix"])
        await drop_tables(mysql_url, settings["backends"]["mysql"]["table_prefix"])
    assert report.rates[(FIGURE, "1 process")] > 0 and report.rates[(FIGURE, "2 processes")] > 0
    assert any("scale-out" in c["target"] for c in report.checks)
    assert any("CPU per append" in note for note in report.notes)
