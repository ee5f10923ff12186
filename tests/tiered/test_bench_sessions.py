"""`ifriend bench sessions --quick`: every figure, its paired floors and its checks, in one run."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ifriend.cli import load_cli


def test_the_quick_run_prints_every_figure_beside_its_floor(
    redis_url: str, mysql_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "sessions.json"
    result = CliRunner().invoke(
        load_cli(),
        ["bench", "sessions", "--quick", "--redis-url", redis_url, "--mysql-url", mysql_url, "--json", str(out)],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    rows = {(f["figure"], f["target"]): f for f in report["figures"]}
    assert ("append n=100", "floor: commit+rpush") in rows
    assert ("get n=100", "floor: rpush") in rows
    assert rows[("get n=100 [lru cold]", "adk-db")]["n"] == rows[("get n=100 [lru cold]", "tiered")]["n"]
    for n in (10, 100):  # the shortest and the longest sessions, interleaved
        assert rows[("append, shortest vs longest session [flat]", f"tiered n={n}")]["n"] > 0
    for mode in ("gc default", "gc tuned", "gc off"):  # each in a worker process of its own
        assert rows[("append n=100, 1000 parsed events held [gc]", mode)]["n"] == 2 * 10
    paired = rows[("append n=100", "floor: commit+rpush")]
    assert paired["n"] == rows[("append n=100", "tiered")]["n"]  # one floor per measured append
    assert paired["cpu_p50_ms"] > 0
    checks = {c["target"] for c in report["checks"]}
    for expected in (
        "tiered append p50 n=100 / paired commit+rpush floor",
        "tiered append p99 / p50 n=100",
        "tiered append p50 n=100 / n=10, interleaved (flat in n)",
        "tiered get p50 n=100, LRU hit / paired rpush floor",
        "adk-db get / tiered get n=100, LRU cold (speed-up)",
        "tiered / adk-db events per second, concurrent (speed-up)",
        "events/s, 2 processes / 1 process (scale-out)",
        "tiered append p99 / p50 with 1000 parsed events held, gc tuned",
    ):
        assert expected in checks
    assert any(note.startswith("CPU per append") for note in report["notes"])
    assert "floor: rpush" in result.output
