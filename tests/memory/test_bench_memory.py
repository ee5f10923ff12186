"""`ifriend bench memory --quick`: every figure of every target, and nothing left on the servers."""

from __future__ import annotations

import json

import redis
from click.testing import CliRunner

from ifriend_bench.memory import BASELINE, SEARCH_KINDS, TARGETS
from ifriend.cli import load_cli



def test_bench_memory_quick_reports_every_target(tmp_path, redis_url: str, mysql_url: str) -> None:
    out = tmp_path / "memory.json"
    result = CliRunner().invoke(
        load_cli(),
        ["bench", "memory", "--quick", "--redis-url", redis_url, "--mysql-url", mysql_url, "--json", str(out)],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    figures = {(f["figure"], f["target"]): f for f in report["figures"]}
    for target in (*TARGETS, BASELINE):
        for suffix in ("", ", others x2"):
            for figure in (*(f"search {kind}" for kind in SEARCH_KINDS), "add 1 event"):
                assert figures[(figure, target + suffix)]["n"] > 0
    assert any(c["target"].startswith("redis search keywords p50") for c in report["checks"])
    client = redis.Redis.from_url(redis_url)
    try:
        assert list(client.scan_iter(match="ifriend-bench-*:{m|*", count=1000)) == []
    finally:
        client.close()
