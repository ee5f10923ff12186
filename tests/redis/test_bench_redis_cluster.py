"""`perf/bench_redis_cluster.py --quick` keeps working (it is where the cluster figures come from)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]


def test_the_cluster_benchmark_runs_every_figure(redis_cluster_url: str, redis_url: str) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "perf" / "bench_redis_cluster.py"), redis_cluster_url, redis_url, "--quick"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "lean" in lines[0] and "redis-py" in lines[0] and "single" in lines[0]
    for figure in ("probe", "load", "append", "mirror_append", "create", "list"):
        assert any(line.startswith(figure) for line in lines[1:]), figure
    assert "sessions appending at once" in lines[-1] and "lean / redis-py" in lines[-1]
