"""The telemetry figure: `tiered` with telemetry off, on (every span) and sampled, side by side.

One `tiered` service over the same sessions records, operation by operation in turn,
into its App's recorder with no SDK (off: the API's no-op, as `exporter = "none"`),
into a recorder with its own SDK exporting every span (a batch exporter to a JSON-lines
file), and into one sampling at `sample_ratio = 0.1`. Switching is one attribute of the
service: its operations, and everything under them (round-trip spans, notes, counters),
follow the operation's recorder.

`python -m ifriend_bench.overhead [--runs N]` runs the figure alone N times and prints
each run's ratios, their median and spread (needs the local servers: `make servers`).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from opentelemetry import trace

from ifriend.config import TelemetrySettings
from ifriend.telemetry.recorder import Recorder
from ifriend.telemetry.setup import Telemetry, build_telemetry

from .timing import Report

if TYPE_CHECKING:
    from .sessions import BenchConfig, Target

TELEMETRY_ON = "tiered+otel"
TELEMETRY_SAMPLED = "tiered+otel 10%"
TELEMETRY_N = 100
FIGURES = ("append", f"get n={TELEMETRY_N}")
MODES = (("all spans", TELEMETRY_ON, 1.0), ("10% sampled", TELEMETRY_SAMPLED, 0.1))


async def bench_telemetry(report: Report, targets: list[Target], config: BenchConfig, folder: str) -> None:
    """`tiered` with telemetry off, on and sampled, interleaved operation by operation."""
    from .sessions import _get, interleave

    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        report.notes.append(
            "telemetry: this process has OpenTelemetry providers of its own, so 'off' would "
            "record too; not measured"
        )
        return
    tiered = next(t for t in targets if t.name == "tiered")
    service = tiered.service
    built: list[Telemetry] = []
    for what, _, ratio in MODES:
        settings = TelemetrySettings(
            exporter="jsonl", file=os.path.join(folder, f"{what.split()[0]}.jsonl"), sample_ratio=ratio
        )
        made = build_telemetry(settings, env={})
        assert made is not None
        built.append(made)
    off = service.telemetry
    recorders: list[Recorder | None] = [off]
    for made in built:
        recorders.append(recorder := Recorder())
        recorder.start(made)
    try:
        appended = await tiered.prefill(10, 5, f"otel-{uuid.uuid4().hex[:6]}")
        read = await tiered.prefill(TELEMETRY_N, 1, f"otel-get-{uuid.uuid4().hex[:6]}")
        await _get(tiered, read[0])  # in the LRU from now on

        def mode(m: int, operation: Callable[[int], Awaitable[None]]) -> Callable[[int], Awaitable[None]]:
            async def run(i: int) -> None:
                service.telemetry = recorders[m]
                try:
                    await operation(i)
                finally:
                    service.telemetry = off

            return run

        cycle = itertools.cycle(appended)
        append = lambda i: tiered.append(next(cycle), 10**7 + i)  # noqa: E731
        get = lambda i: _get(tiered, read[0])  # noqa: E731
        for figure, operation in zip(FIGURES, (append, get)):
            runners = {"tiered": mode(0, operation)}
            for m, (_, target, _) in enumerate(MODES, start=1):
                runners[target] = mode(m, operation)
            await interleave(
                report,
                f"{figure} [telemetry]",
                runners,
                samples=config.telemetry_samples,
                rounds=config.telemetry_rounds,
            )
        for made, (what, _, _) in zip(built, MODES):
            made.flush()
            path = made.span_processor.exporter.inner.path  # JsonLinesSpanExporter under the redaction
            spans = sum(1 for line in open(path, "rb") if line.startswith(b'{"type":"span"'))
            report.notes.append(
                f"telemetry ({what}): {spans} spans written to a JSON-lines file, "
                f"{made.dropped_spans} dropped"
            )
    finally:
        service.telemetry = off
        for recorder in recorders[1:]:
            assert recorder is not None
            recorder.stop()
        for made in built:
            made.shutdown(1.0)


def ratios(report: Report) -> dict[str, float]:
    """p50 on / off per figure and mode: `{"append, all spans": 1.04, ...}`."""
    found = {}
    for figure in FIGURES:
        name = f"{figure} [telemetry]"
        for what, target, _ in MODES:
            if (name, target) in report.samples:
                found[f"{figure}, {what}"] = report.p50(name, target) / report.p50(name, "tiered")
    return found


def check(report: Report) -> None:
    """The target: at most 1.10 in every figure and mode."""
    for key, value in ratios(report).items():
        figure, what = key.split(", ")
        how = "every span" if what == "all spans" else "sample_ratio 0.1"
        report.check(f"tiered {figure} p50, telemetry on / off (SDK, batch to a file, {how})", value, 1.10)


async def run_alone(redis_url: str, mysql_url: str, samples: int) -> Report:
    """The figure alone, on a `tiered` App of its own (its data removed afterwards)."""
    from ifriend.plugin_api import App, Settings
    from .cleanup import delete_redis_keys, drop_tables
    from .sessions import BenchConfig, Target, backends

    run_id = uuid.uuid4().hex[:8]
    config = BenchConfig(redis_url, mysql_url, telemetry_samples=samples, telemetry_rounds=samples)
    tables = backends(config, run_id)
    report = Report("telemetry")
    try:
        settings = Settings.model_validate({"session": {"backend": "tiered"}, "backends": tables})
        async with App(settings) as app:
            target = Target("tiered", app.session_service, store=app.session_service.store)
            with tempfile.TemporaryDirectory(prefix="ifriend-bench-otel-") as folder:
                await bench_telemetry(report, [target], config, folder)
    finally:
        await delete_redis_keys(redis_url, tables["redis"]["key_prefix"])
        await drop_tables(mysql_url, tables["mysql"]["table_prefix"])
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=2000, help="operations per mode and figure")
    parser.add_argument("--redis-url", default=os.environ.get("IFRIEND_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--mysql-url", default=os.environ.get("IFRIEND_TEST_MYSQL_URL"))
    args = parser.parse_args(argv)
    if not args.mysql_url:
        parser.error("--mysql-url (or IFRIEND_TEST_MYSQL_URL) is required")
    runs: list[dict[str, float]] = []
    for i in range(args.runs):
        report = asyncio.run(run_alone(args.redis_url, args.mysql_url, args.samples))
        runs.append(ratios(report))
        p50s = ", ".join(
            f"{figure} {report.p50(f'{figure} [telemetry]', 'tiered') * 1e3:.3f} ms" for figure in FIGURES
        )
        print(f"run {i + 1}: off p50 {p50s}; " + ", ".join(f"{k} {v:.3f}" for k, v in runs[-1].items()), flush=True)
    print("p50 on / off over", len(runs), "runs: median [min, max]")
    for key in runs[0]:
        values = [r[key] for r in runs]
        print(f"  {key}: {statistics.median(values):.3f} [{min(values):.3f}, {max(values):.3f}]")


if __name__ == "__main__":
    main()
