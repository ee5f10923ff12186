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
    for backend in ("memory", "redis", "mysql", "tiered", "tiered+compaction"):
        for figure in ("total [all]", "overhead [last]", "model [last]", "session calls [last]",
                       "session appends [last]", "adk runner rest [last]"):
            assert figures[(figure, backend)]["n"] > 0
    assert figures[("session calls", "floor")]["n"] == figures[("session calls [last]", "tiered")]["n"]
    checks = [c["target"] for c in report["checks"]]
    assert checks[0].startswith("tiered overhead p50") and checks[1].startswith("tiered session calls p50")
    assert "overhead [last]" in result.output and "p50 / floor" in result.output
    notes = "\n".join(report["notes"])
    assert "session calls per turn at turns 4-6, tiered: get 1 + append 2" in notes
    assert "tiered session calls / paired floor" in notes
    compactions = int(notes.split("overlap 1; ")[1].split()[0])
    assert compactions >= 1  # interval 2 over 6 turns
