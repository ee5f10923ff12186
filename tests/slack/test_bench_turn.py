"""`ifriend bench turn --quick`: every figure is produced (figures themselves are not checked)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from ifriend.cli import load_cli



def test_bench_turn_quick_reports_every_backend(tmp_path, redis_url: str, mysql_url: str) -> None:
    out = tmp_path / "turn.json"
    result = CliRunner().invoke(
        load_cli(),
        ["bench", "turn", "--quick", "--redis-url", redis_url, "--mysql-url", mysql_url, "--json", str(out)],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    figures = {(f["figure"], f["target"]): f for f in report["figures"]}
    for backend in ("memory", "redis", "mysql", "tiered"):
        for figure in ("total [all]", "overhead [last]", "model [last]", "session calls [last]"):
            assert figures[(figure, backend)]["n"] > 0
    assert report["checks"][0]["target"].startswith("tiered overhead p50")
    assert "overhead [last]" in result.output
