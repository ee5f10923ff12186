"""The benchmark's provider switch: telemetry off and on in one process, call by call."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ifriend.bench.overhead import Switch, SwitchMeterProvider, SwitchTracerProvider


def test_the_switch_sends_each_call_to_the_chosen_provider():
    exporters = [InMemorySpanExporter(), InMemorySpanExporter()]
    readers = [InMemoryMetricReader(), InMemoryMetricReader()]
    tracers, meters = [], []
    for exporter, reader in zip(exporters, readers):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracers.append(provider)
        meters.append(MeterProvider(metric_readers=[reader]))
    switch = Switch()
    tracer = SwitchTracerProvider(switch, tracers).get_tracer("ifriend")
    histogram = SwitchMeterProvider(switch, meters).get_meter("ifriend").create_histogram(
        "ifriend.operation.duration", unit="s", explicit_bucket_boundaries_advisory=[0.1, 1.0]
    )
    for mode in (0, 1, 2, 2):
        switch.mode = mode
        with tracer.start_as_current_span(f"op{mode}"):
            pass
        tracer.start_span(f"raw{mode}").end()
        histogram.record(0.5)
    assert [s.name for s in exporters[0].get_finished_spans()] == ["op1", "raw1"]
    assert [s.name for s in exporters[1].get_finished_spans()] == ["op2", "raw2", "op2", "raw2"]
    counts = []
    for reader in readers:
        [point] = reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics[0].data.data_points
        counts.append(point.count)
    assert counts == [1, 2]


FIGURE = """
import asyncio, json, sys, tempfile, uuid
from contextlib import AsyncExitStack
from ifriend import App, Settings
from ifriend.bench.cleanup import delete_redis_keys, drop_tables
from ifriend.bench.sessions import BenchConfig, Target, bench_telemetry
from ifriend.bench.timing import Report

async def main(redis_url, mysql_url):
    run = uuid.uuid4().hex[:8]
    redis = {"url": redis_url, "key_prefix": f"ifriend-otel-{run}"}
    mysql = {"url": mysql_url, "table_prefix": f"ifotel_{run}_"}
    config = BenchConfig(redis_url, mysql_url, telemetry_samples=6, telemetry_rounds=6)
    report = Report("telemetry")
    try:
        settings = Settings.model_validate(
            {"session": {"backend": "tiered"}, "backends": {"redis": redis, "mysql": mysql}})
        async with App(settings) as app:
            target = Target("tiered", app.session_service, store=app.session_service.store)
            with tempfile.TemporaryDirectory() as folder:
                await bench_telemetry(report, [target], config, folder)
    finally:
        await delete_redis_keys(redis_url, redis["key_prefix"])
        await drop_tables(mysql_url, mysql["table_prefix"])
    figures = sorted(f"{f} | {t}" for (f, t), s in report.samples.items() if len(s.seconds) == 6)
    print(json.dumps({"figures": figures, "notes": report.notes}))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_the_benchmark_measures_telemetry_off_on_and_sampled_in_one_process():
    import asyncio
    import json
    import os
    import sys

    from ..conftest import server_url

    redis_url, mysql_url = server_url("IFRIEND_TEST_REDIS_URL"), server_url("IFRIEND_TEST_MYSQL_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FIGURE, redis_url, mysql_url, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode == 0, err.decode()[-3000:]
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["figures"] == [
        f"{figure} [telemetry] | {target}"
        for figure in ("append", "get n=100")
        for target in ("tiered", "tiered+otel", "tiered+otel 10%")
    ]
    all_spans, sampled = result["notes"]
    assert all_spans.startswith("telemetry (all spans):") and all_spans.endswith(", 0 dropped")
    assert int(all_spans.split(": ")[1].split()[0]) >= 6 * 2 + 6 * 3  # spans of every operation
    assert sampled.startswith("telemetry (10% sampled):")
