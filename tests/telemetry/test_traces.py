"""`ifriend traces`: the table, the slowest turns, the filters and the HTML report."""

from __future__ import annotations

import json
import os
import random
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ifriend.cli import create_cli
from ifriend.traces.html import TIER_COLOURS
from ifriend.traces.records import load_spans, parse_since
from ifriend.traces.report import timeline

from .browser import chromium_binary, open_page
from .png import pixels, share_of

MS = 1_000_000
NOW = time.time_ns()
_ids = iter(range(1, 10**9))


def span(name, trace, start_ms, duration_ms, parent=None, *, age_ns=60 * 10**9, **attributes):
    """A span line as the jsonl exporter writes it, `age_ns` before now."""
    start = NOW - age_ns + int(start_ms * MS)
    return {
        "type": "span",
        "name": name,
        "trace_id": f"{trace:032x}",
        "span_id": f"{next(_ids):016x}",
        "parent_id": parent["span_id"] if parent else None,
        "kind": "INTERNAL",
        "start_ns": start,
        "end_ns": start + int(duration_ms * MS),
        "status": "UNSET",
        "attributes": attributes,
        "events": [],
        "scope": "ifriend",
        "service": "ifriend",
    }


def turn(trace: int, total_ms: float, *, age_ns: int = 60 * 10**9) -> list[dict]:
    root = span("ifriend.turn", trace, 0, total_ms, age_ns=age_ns, **{"ifriend.channel": "slack"})
    get = span("ifriend.session.get_session", trace, 1, 2, root, age_ns=age_ns, **{"ifriend.tier": "lru"})
    probe = span("ifriend.redis.probe", trace, 1.2, 1, get, age_ns=age_ns, **{"ifriend.tier": "redis"})
    invoke = span("invocation", trace, 4, total_ms - 5, root, age_ns=age_ns)
    append = span("ifriend.session.append_event", trace, 5, 3, invoke, age_ns=age_ns, **{"ifriend.tier": "mysql"})
    return [root, get, probe, invoke, append]


def write(path: Path, records: list[dict], *, extra: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + extra)
    return path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(create_cli(), list(args), obj={"plugins": []})


def row(output: str, operation: str, tier: str) -> list[str]:
    for line in output.splitlines():
        cells = line.split()
        if cells[:2] == [operation, tier]:
            return cells
    raise AssertionError(f"no row {operation} {tier} in:\n{output}")


@pytest.fixture
def trace_file(tmp_path: Path) -> Path:
    records = []
    for i in range(1, 101):  # get_session from the LRU: 1 ms .. 100 ms
        records.append(span("ifriend.session.get_session", 10**6 + i, i, i, **{"ifriend.tier": "lru"}))
    for trace, total in ((1, 40), (2, 250), (3, 90)):
        records.extend(turn(trace, total))
    metric = {"type": "metric", "name": "ifriend.lru.hits", "time_ns": NOW, "points": []}
    return write(tmp_path / "traces.jsonl", records + [metric], extra='{"type": "span", "trunc')


def test_the_table_has_count_and_percentiles_per_operation_and_tier(trace_file):
    result = invoke("traces", str(trace_file))
    assert result.exit_code == 0, result.output
    cells = row(result.stdout, "ifriend.session.get_session", "lru")
    assert cells[2:7] == ["103", "49.000", "90.000", "99.000", "100.000"]
    assert row(result.stdout, "ifriend.session.append_event", "mysql")[2:4] == ["3", "3.000"]
    assert row(result.stdout, "ifriend.turn", "-")[2] == "3"
    assert row(result.stdout, "ifriend.redis.probe", "redis")[2] == "3"
    assert re.search(r"[▁▂▃▄▅▆▇█]", cells[7])
    assert "histogram: 16 log-spaced bins" in result.stdout
    assert "1 lines could not be read" in result.stderr


def test_the_slowest_turns_are_indented_waterfalls(trace_file):
    result = invoke("traces", str(trace_file), "--slowest", "2")
    assert result.exit_code == 0, result.output
    waterfalls = result.stdout.split("slowest 2 turns:")[1]
    headers = [line for line in waterfalls.splitlines() if line.startswith("trace ")]
    assert [h.split()[3:5] for h in headers] == [["250", "ms"], ["90.0", "ms"]]
    first = waterfalls.split("trace ")[1].splitlines()
    names = ["".join(re.match(r"( *)(\S+)", line[2:]).groups()) for line in first[1:] if line]
    assert names == [
        "ifriend.turn",
        "  ifriend.session.get_session",
        "    ifriend.redis.probe",
        "  invocation",
        "    ifriend.session.append_event",
    ]
    probe = next(line for line in first if "ifriend.redis.probe" in line)
    assert "redis" in probe and "+1.200 ms" in probe and "1.000 ms" in probe and "|" in probe


def test_filters_by_operation_and_time(tmp_path):
    old = turn(7, 500, age_ns=3 * 3600 * 10**9)  # three hours ago
    recent = turn(8, 30)
    path = write(tmp_path / "t.jsonl", old + recent)
    result = invoke("traces", str(path), "--op", "ifriend.session.*", "--op", "probe")
    assert result.exit_code == 0, result.output
    operations = {line.split()[0] for line in result.stdout.splitlines()[2:-1]}
    assert operations == {"ifriend.session.get_session", "ifriend.session.append_event", "ifriend.redis.probe"}
    result = invoke("traces", str(path), "--since", "1h", "--slowest", "5")
    assert row(result.stdout, "ifriend.turn", "-")[2] == "1"
    assert "trace 0000000000000000000000000000000" + "8" in result.stdout
    assert "0000000000000000000000000000000" + "7" not in result.stdout
    assert invoke("traces", str(path), "--since", "4h").stdout.count("ifriend.turn") == 1  # one row
    assert row(invoke("traces", str(path), "--since", "4h").stdout, "ifriend.turn", "-")[2] == "2"
    bad = invoke("traces", str(path), "--since", "yesterday")
    assert bad.exit_code == 2 and "neither a duration" in bad.output


def test_since_takes_durations_and_iso_times():
    now = 1_700_000_000 * 10**9
    assert parse_since("10m", now_ns=now) == now - 600 * 10**9
    assert parse_since("1h30m", now_ns=now) == now - 5400 * 10**9
    assert parse_since("2023-11-14T22:13:20+00:00") == 1_700_000_000 * 10**9
    assert parse_since("2023-11-14T22:13:20Z") == 1_700_000_000 * 10**9


def test_the_default_is_the_configured_file_or_a_folder_of_them(tmp_path, monkeypatch):
    folder = tmp_path / "traces"
    folder.mkdir()
    write(folder / "a.jsonl", turn(1, 10))
    write(folder / "b.jsonl", turn(2, 20))
    (folder / "notes.txt").write_text("not a trace file")
    config = tmp_path / "ifriend.toml"
    config.write_text(f'[telemetry]\nexporter = "jsonl"\nfile = "{folder}"\n')
    result = invoke("--config", str(config), "traces")
    assert result.exit_code == 0, result.output
    assert row(result.stdout, "ifriend.turn", "-")[2] == "2"
    monkeypatch.chdir(tmp_path)
    missing = invoke("traces", "nowhere.jsonl")
    assert missing.exit_code == 1 and "no trace file at nowhere.jsonl" in missing.output


def test_the_html_report_is_one_self_contained_page(trace_file, tmp_path):
    records = turn(9, 70)
    records[3]["name"] = "<script>alert('x')</script>"
    hostile = write(tmp_path / "hostile.jsonl", records)
    out = tmp_path / "report" / "r.html"
    result = invoke("traces", str(trace_file), "--html", str(out))
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and 'id="summary"' in page
    for remote in ("http://", "https://", "<link", " src=", "@import", "url("):
        assert remote not in page
    assert page.count('class="turn"') == 3  # the slowest turns (up to 5) as waterfalls
    invoke("traces", str(hostile), "--html", str(out))
    page = out.read_text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page


def _need_chromium() -> None:
    if chromium_binary():
        return
    reason = "chromium is not installed (`make test` installs it)"
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{reason}; CI is set, so this is a failure", pytrace=False)
    pytest.skip(reason)


async def test_the_html_report_renders_in_chromium_without_console_errors(trace_file, tmp_path):
    _need_chromium()
    out = tmp_path / "r.html"
    assert invoke("traces", str(trace_file), "--html", str(out), "--slowest", "2").exit_code == 0
    page = await open_page(
        out.as_uri(),
        {
            "ready": "document.body.dataset.ready",
            "rows": "document.querySelectorAll('#summary tbody tr').length",
            "charts": "document.querySelectorAll('.chart svg rect.bar').length",
            "turns": "document.querySelectorAll('details.turn').length",
            "waterfall_rows": "document.querySelectorAll('details.turn tbody tr').length",
            "width": "document.querySelector('.chart svg').getBoundingClientRect().width",
            "sorted": (
                "(() => { const th = document.querySelectorAll('#summary th')[2]; th.click(); th.click();"
                " return Array.from(document.querySelectorAll('#summary tbody tr td:nth-child(3)'))"
                ".map(td => Number(td.textContent)); })()"
            ),
        },
        profile=tmp_path / "profile",
    )
    assert page.errors == []
    values = page.values
    assert values["ready"] == "1"
    assert values["rows"] == 5 and values["charts"] > 5
    assert values["turns"] == 2 and values["waterfall_rows"] == 10
    assert values["width"] > 100
    assert values["sorted"] == sorted(values["sorted"], reverse=True)


@pytest.fixture
def history_file(tmp_path: Path) -> Path:
    """Half an hour of reads and appends: the LRU cold for three minutes (a restart) from
    minute 12, appends slower from minute 20 (a deploy)."""
    rng = random.Random(3)
    records = []
    minute = 60 * 10**9
    for i in range(900):
        age = 30 * minute - i * 2 * 10**9
        cold = 15 * minute <= age < 18 * minute
        tier = rng.choices(["lru", "redis", "mysql"], [0.1, 0.3, 0.6] if cold else [0.85, 0.12, 0.03])[0]
        ms = {"lru": 0.3, "redis": 0.8, "mysql": 3.0}[tier] * rng.lognormvariate(0, 0.3)
        records.append(span("ifriend.session.get_session", 10**7 + i, 0, ms, age_ns=age, **{"ifriend.tier": tier}))
        if i % 3 == 0:
            slow = 2.0 if age < 10 * minute else 1.0
            ms = 4 * slow * rng.lognormvariate(0, 0.3)
            records.append(span("ifriend.session.append_event", 2 * 10**7 + i, 0, ms, age_ns=age,
                                **{"ifriend.tier": "mysql"}))
    return write(tmp_path / "history.jsonl", records)


def test_the_timeline_has_percentiles_per_step_and_the_tiers_of_reads(history_file):
    loaded = load_spans([history_file])
    found = timeline(loaded.spans)
    assert found is not None and found.step_ns == 60 * 10**9 and 30 <= found.points <= 31
    series = {s.operation: s for s in found.series}
    assert set(series) == {"ifriend.session.get_session", "ifriend.session.append_event"}
    appends = series["ifriend.session.append_event"]
    assert all(p99 >= p50 for p50, p99 in zip(appends.p50, appends.p99) if p50 is not None)
    steps = [p50 for p50 in appends.p50 if p50 is not None]  # an edge step may hold no append
    before, after = sorted(steps[:10]), sorted(steps[-8:])
    assert after[4] > 1.5 * before[5]  # the slower deploy shows
    reads = found.tiers
    assert set(reads) == {"lru", "redis", "mysql"} and sum(map(sum, reads.values())) == 900
    cold = max(range(found.points), key=lambda i: reads["mysql"][i])
    assert 12 <= cold <= 18 and reads["mysql"][cold] > reads["lru"][cold]


async def test_the_charts_over_time_render_in_chromium(history_file, tmp_path):
    """A screenshot of each chart: its lines and bars are drawn, in their colours."""
    _need_chromium()
    out = tmp_path / "r.html"
    assert invoke("traces", str(history_file), "--html", str(out)).exit_code == 0
    page = await open_page(
        out.as_uri(),
        {
            "lines": "document.querySelectorAll('svg.over-time polyline').length",
            "dots": "document.querySelectorAll('svg.over-time circle').length",
            "bars": "document.querySelectorAll('svg.tiers rect.tier').length",
            "tiers": "[...new Set([...document.querySelectorAll('svg.tiers rect.tier')].map(r => r.dataset.tier))]",
        },
        profile=tmp_path / "profile",
        screenshots={"latency": "svg.over-time", "tiers": "svg.tiers"},
    )
    assert page.errors == []
    values = page.values
    assert values["lines"] >= 4 and values["dots"] >= 2 * 2 * 30
    assert values["bars"] >= 3 * 30 // 2 and sorted(values["tiers"]) == ["lru", "mysql", "redis"]
    latency, tiers = page.screenshots["latency"], page.screenshots["tiers"]
    width, height, _ = pixels(latency)
    assert width >= 300 and height >= 120
    assert share_of(latency, "#12a150") > 0.005 and share_of(latency, "#d92d20") > 0.005  # p50, p99
    for colour in (TIER_COLOURS["lru"], TIER_COLOURS["redis"], TIER_COLOURS["mysql"]):
        assert share_of(tiers, colour) > 0.01, colour
    assert share_of(tiers, TIER_COLOURS["lru"]) > share_of(tiers, TIER_COLOURS["mysql"])
