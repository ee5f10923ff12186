"""`python -m ifriend_bench.summary`: checks of several runs, median and spread."""

from __future__ import annotations

from ifriend_bench.summary import summarize


def _report(*checks: tuple[str, float, bool]) -> dict:
    return {"checks": [{"target": t, "value": v, "limit": 1.3, "ok": ok} for t, v, ok in checks]}


def test_each_check_gets_its_runs_median_and_spread() -> None:
    table = summarize(
        [
            _report(("append / floor", 1.5, False), ("get / floor", 1.2, True)),
            _report(("append / floor", 1.1, True), ("get / floor", 1.4, False)),
            _report(("append / floor", 1.2, True)),
        ]
    )
    lines = table.splitlines()
    assert lines[0] == "| check | limit | run 1 | run 2 | run 3 | median [min, max] | met |"
    assert lines[2] == "| append / floor | 1.3 | 1.500 | 1.100 | 1.200 | 1.200 [1.100, 1.500] | 2/3 |"
    assert lines[3] == "| get / floor | 1.3 | 1.200 | 1.400 |  | 1.300 [1.200, 1.400] | 1/2 |"
