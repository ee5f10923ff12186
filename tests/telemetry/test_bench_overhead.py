"""The benchmark's telemetry figure: off, on and sampled in one process, operation by operation."""

from __future__ import annotations

FIGURE = """
import asyncio, json, sys
from ifriend_bench.overhead import run_alone

report = asyncio.run(run_alone(sys.argv[1], sys.argv[2], 6))
figures = sorted(f"{f} | {t}" for (f, t), s in report.samples.items() if len(s.seconds) == 6)
print(json.dumps({"figures": figures, "notes": report.notes}))
"""


async def test_the_benchmark_measures_telemetry_off_on_and_sampled_in_one_process(redis_url, mysql_url):
    import asyncio
    import json
    import os
    import sys

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
