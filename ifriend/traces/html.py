"""`ifriend traces --html`: one self-contained page (inline CSS, SVG and a little JS; no network).

It holds the table of `ifriend traces` (a small histogram per row), one latency
histogram per operation and tier with its p50 and p99 marked, p50 and p99 over time per
operation (a regression after a deploy, a cold cache after a restart), the share of
reads each tier answered over time, and the waterfalls of the slowest turns. Every text
from the spans is escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import datetime

from .records import SpanRecord, walk
from .report import Bins, Stat, Timeline, format_ms

# Colours of the tiers in the reads chart (others take `OTHER_TIER`).
TIER_COLOURS = {"lru": "#12a150", "redis": "#d6409f", "mysql": "#3b6fd8", "memory": "#98a2b3"}
OTHER_TIER = "#f79009"

CSS = """
:root { --fg:#1d2330; --muted:#667085; --line:#e4e7ec; --bar:#3b6fd8; --p50:#12a150; --p99:#d92d20;
        --bg:#ffffff; --alt:#f8f9fb; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       background: var(--bg); margin: 24px; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
.meta { color: var(--muted); margin-bottom: 16px; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { cursor: pointer; user-select: none; background: var(--alt); position: sticky; top: 0; }
th.sorted-asc::after { content: " \\25B2"; } th.sorted-desc::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 16px; }
.chart { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.chart h3 { font-size: 13px; margin: 0 0 4px; font-weight: 600; overflow-wrap: anywhere; }
.chart .sub { color: var(--muted); font-size: 12px; }
.chart.wide { max-width: 900px; }
svg text { font: 10px system-ui, sans-serif; fill: var(--muted); }
.bar { fill: var(--bar); } .p50 { stroke: var(--p50); stroke-width: 1.5; }
.p99 { stroke: var(--p99); stroke-width: 1.5; stroke-dasharray: 3 2; }
.turn { border: 1px solid var(--line); border-radius: 6px; margin-bottom: 14px; }
.turn > summary { padding: 6px 10px; cursor: pointer; background: var(--alt); }
.turn .wf { width: 100%; border-collapse: collapse; }
.wf td { border-bottom: 1px solid var(--line); padding: 2px 8px; font-size: 12px; }
.wf td.track { width: 45%; }
.wf .error { color: var(--p99); font-weight: 600; }
.empty { color: var(--muted); }
.line { fill: none; stroke-width: 1.5; } .line.p50 { stroke: var(--p50); } .line.p99 { stroke: var(--p99); }
.dot.p50 { fill: var(--p50); } .dot.p99 { fill: var(--p99); }
.grid { stroke: var(--line); }
.legend { display: flex; gap: 14px; flex-wrap: wrap; color: var(--muted); font-size: 12px; margin: 4px 0 8px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: -1px; }
"""

JS = """
(function () {
  function cell(row, i) { var c = row.children[i]; return c.dataset.v !== undefined ? c.dataset.v : c.textContent; }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.querySelectorAll("th");
    heads.forEach(function (th, i) {
      th.addEventListener("click", function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var asc = !th.classList.contains("sorted-asc");
        heads.forEach(function (h) { h.classList.remove("sorted-asc", "sorted-desc"); });
        th.classList.add(asc ? "sorted-asc" : "sorted-desc");
        var numeric = th.dataset.type === "num";
        rows.sort(function (a, b) {
          var x = cell(a, i), y = cell(b, i);
          var d = numeric ? parseFloat(x) - parseFloat(y) : String(x).localeCompare(String(y));
          return asc ? d : -d;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  document.body.dataset.ready = "1";
})();
"""


def e(value: object) -> str:
    return html.escape(str(value), quote=True)


def render_html(
    stats: Sequence[Stat],
    slowest: Sequence[SpanRecord],
    *,
    title: str = "ifriend traces",
    sources: Sequence[str] = (),
    filters: str = "",
    span_count: int = 0,
    over_time: Timeline | None = None,
) -> str:
    bins = Bins.over(stats)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f'<div class="meta">{span_count} spans from {e(", ".join(sources) or "-")}'
        f"{' · ' + e(filters) if filters else ''}"
        f" · generated {e(datetime.now().astimezone().strftime('%Y-%m-%d %H:%M:%S %Z'))}</div>",
        "<h2>Latency per operation and tier</h2>",
        _table(stats, bins),
        "<h2>Latency histograms</h2>",
        _charts(stats, bins),
        "<h2>Latency over time (p50, p99)</h2>",
        _latency_over_time(over_time),
        "<h2>Reads by tier over time</h2>",
        _tiers_over_time(over_time),
        f"<h2>Slowest turns ({len(slowest)})</h2>",
        _waterfalls(slowest),
        f"<script>{JS}</script>",
        "</body></html>",
    ]
    return "\n".join(parts)


def _table(stats: Sequence[Stat], bins: Bins) -> str:
    if not stats:
        return '<p class="empty">No spans match.</p>'
    head = "".join(
        f'<th data-type="{kind}">{e(name)}</th>'
        for name, kind in [
            ("operation", "text"),
            ("tier", "text"),
            ("count", "num"),
            ("p50 ms", "num"),
            ("p90 ms", "num"),
            ("p99 ms", "num"),
            ("max ms", "num"),
            ("histogram", "text"),
        ]
    )
    rows = []
    for s in stats:
        numbers = "".join(
            f'<td class="num" data-v="{ns / 1e6:.6f}">{ns / 1e6:.3f}</td>'
            for ns in (s.p(0.50), s.p(0.90), s.p(0.99), s.max)
        )
        rows.append(
            f"<tr><td>{e(s.operation)}</td><td>{e(s.tier)}</td>"
            f'<td class="num" data-v="{s.count}">{s.count}</td>{numbers}'
            f"<td>{_spark(bins.counts(s.durations))}</td></tr>"
        )
    return (
        f'<table class="sortable" id="summary"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _spark(counts: Sequence[int], width: int = 128, height: int = 18) -> str:
    top = max(counts) if counts else 0
    step = width / max(1, len(counts))
    bars = []
    for i, c in enumerate(counts):
        if c:
            h = max(1.0, c / top * height)
            bars.append(
                f'<rect class="bar" x="{i * step:.1f}" y="{height - h:.1f}" '
                f'width="{max(1.0, step - 1):.1f}" height="{h:.1f}"></rect>'
            )
    return (
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="latency histogram">{"".join(bars)}</svg>'
    )


def _charts(stats: Sequence[Stat], bins: Bins) -> str:
    if not stats:
        return '<p class="empty">No spans match.</p>'
    return '<div class="charts">' + "".join(_chart(s, bins) for s in stats) + "</div>"


def _chart(s: Stat, bins: Bins, width: int = 340, height: int = 120) -> str:
    counts = bins.counts(s.durations)
    top = max(counts) or 1
    left, bottom, plot_h = 30, 18, height - 26
    plot_w = width - left - 4
    step = plot_w / bins.count
    parts = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{e(s.operation)} latency histogram">'
    ]
    for i, c in enumerate(counts):
        if not c:
            continue
        h = c / top * plot_h
        low, high = format_ms(bins.edge(i)), format_ms(bins.edge(i + 1))
        parts.append(
            f'<rect class="bar" x="{left + i * step:.1f}" y="{height - bottom - h:.1f}" '
            f'width="{max(1.0, step - 1.5):.1f}" height="{h:.1f}"><title>{c} between {e(low)} '
            f"and {e(high)}</title></rect>"
        )
    for q, css in ((0.50, "p50"), (0.99, "p99")):
        x = left + _position(bins, s.p(q)) * plot_w
        parts.append(
            f'<line class="{css}" x1="{x:.1f}" x2="{x:.1f}" y1="4" y2="{height - bottom}">'
            f"<title>p{int(q * 100)} {e(format_ms(s.p(q)))}</title></line>"
        )
    parts.append(
        f'<line x1="{left}" x2="{width - 4}" y1="{height - bottom}" y2="{height - bottom}" '
        'stroke="#98a2b3"></line>'
    )
    for i in (0, bins.count // 2, bins.count):
        x = left + i * step
        anchor = "start" if i == 0 else ("end" if i == bins.count else "middle")
        parts.append(
            f'<text x="{x:.1f}" y="{height - 4}" text-anchor="{anchor}">'
            f"{e(format_ms(bins.edge(i)))}</text>"
        )
    parts.append(f'<text x="{left - 4}" y="12" text-anchor="end">{top}</text>')
    parts.append("</svg>")
    sub = (
        f"{s.count} spans · p50 {format_ms(s.p(0.5))} · p99 {format_ms(s.p(0.99))} · "
        f"max {format_ms(s.max)}"
    )
    return (
        f'<div class="chart"><h3>{e(s.operation)} <span class="sub">[{e(s.tier)}]</span></h3>'
        f'<div class="sub">{e(sub)}</div>{"".join(parts)}</div>'
    )


def _clock(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9).astimezone().strftime("%H:%M:%S")


def _time_axis(t: Timeline, left: float, plot_w: float, y: float) -> list[str]:
    ticks = []
    for i in sorted({0, t.points // 2, t.points - 1}):
        x = left + (i + 0.5) / t.points * plot_w
        anchor = "start" if i == 0 and t.points > 1 else ("end" if i == t.points - 1 and t.points > 1 else "middle")
        ticks.append(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">{e(_clock(t.at(i)))}</text>')
    return ticks


def _latency_over_time(t: Timeline | None, width: int = 340, height: int = 140) -> str:
    if t is None or not t.series:
        return '<p class="empty">No operations match.</p>'
    step = _duration(t.step_ns)
    charts = []
    left, bottom, top_pad = 56, 18, 6
    plot_w, plot_h = width - left - 6, height - bottom - top_pad
    for series in t.series:
        values = [v for v in series.p50 + series.p99 if v]
        low, high = max(1.0, float(min(values))), float(max(values))
        high = max(high, low * 1.5)
        span = math.log(high) - math.log(low)

        def y(ns: float) -> float:
            return top_pad + plot_h - (math.log(max(ns, low)) - math.log(low)) / span * plot_h

        def x(i: int) -> float:
            return left + (i + 0.5) / t.points * plot_w

        parts = [
            f'<svg class="over-time" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="{e(series.operation)} p50 and p99 over time">'
        ]
        for ns in (low, high):
            parts.append(f'<line class="grid" x1="{left}" x2="{width - 6}" y1="{y(ns):.1f}" y2="{y(ns):.1f}"></line>')
            parts.append(f'<text x="{left - 4}" y="{y(ns) + 3:.1f}" text-anchor="end">{e(format_ms(ns))}</text>')
        for css, points in (("p99", series.p99), ("p50", series.p50)):
            for run in _runs(points):
                coords = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in run)
                parts.append(f'<polyline class="line {css}" points="{coords}"></polyline>')
            for i, v in enumerate(points):
                if v is not None:
                    tip = f"{_clock(t.at(i))}: {css} {format_ms(v)} ({series.counts[i]} spans)"
                    parts.append(
                        f'<circle class="dot {css}" cx="{x(i):.1f}" cy="{y(v):.1f}" r="2">'
                        f"<title>{e(tip)}</title></circle>"
                    )
        parts.extend(_time_axis(t, left, plot_w, height - 4))
        parts.append("</svg>")
        total = sum(series.counts)
        charts.append(
            f'<div class="chart"><h3>{e(series.operation)}</h3><div class="sub">{total} spans · '
            f'steps of {e(step)} · <span style="color:var(--p50)">p50</span> · '
            f'<span style="color:var(--p99)">p99</span></div>{"".join(parts)}</div>'
        )
    return '<div class="charts">' + "".join(charts) + "</div>"


def _duration(ns: int) -> str:
    seconds = ns // 10**9
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _runs(points: Sequence[int | None]) -> list[list[tuple[int, int]]]:
    """The stretches of consecutive steps that have a value (a gap breaks the line)."""
    runs: list[list[tuple[int, int]]] = [[]]
    for i, v in enumerate(points):
        if v is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((i, v))
    return [r for r in runs if len(r) > 1]


def _tiers_over_time(t: Timeline | None, width: int = 700, height: int = 160) -> str:
    if t is None or not t.tiers:
        return '<p class="empty">No reads (ifriend.session.get_session) match.</p>'
    order = [tier for tier in TIER_COLOURS if tier in t.tiers] + sorted(set(t.tiers) - set(TIER_COLOURS))
    colour = {tier: TIER_COLOURS.get(tier, OTHER_TIER) for tier in order}
    legend = "".join(
        f'<span><i style="background:{colour[tier]}"></i>{e(tier)} ({sum(t.tiers[tier])})</span>' for tier in order
    )
    left, bottom, top_pad = 34, 18, 6
    plot_w, plot_h = width - left - 6, height - bottom - top_pad
    bar_w = plot_w / t.points
    parts = [
        f'<svg class="tiers" width="100%" height="{height}" viewBox="0 0 {width} {height}" '
        'preserveAspectRatio="none" role="img" aria-label="share of reads by tier over time">'
    ]
    for share in (0.0, 0.5, 1.0):
        y = top_pad + plot_h - share * plot_h
        parts.append(f'<line class="grid" x1="{left}" x2="{width - 6}" y1="{y:.1f}" y2="{y:.1f}"></line>')
        parts.append(f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{int(share * 100)}%</text>')
    for i in range(t.points):
        reads = sum(t.tiers[tier][i] for tier in order)
        if not reads:
            continue
        y = top_pad + plot_h
        for tier in order:
            n = t.tiers[tier][i]
            if not n:
                continue
            h = n / reads * plot_h
            y -= h
            tip = f"{_clock(t.at(i))}: {tier} {n / reads:.0%} ({n} of {reads} reads)"
            parts.append(
                f'<rect class="tier" data-tier="{e(tier)}" x="{left + i * bar_w + 0.5:.1f}" y="{y:.1f}" '
                f'width="{max(1.0, bar_w - 1):.1f}" height="{h:.1f}" fill="{colour[tier]}">'
                f"<title>{e(tip)}</title></rect>"
            )
    parts.extend(_time_axis(t, left, plot_w, height - 4))
    parts.append("</svg>")
    return f'<div class="chart wide"><div class="legend">{legend}</div>{"".join(parts)}</div>'


def _position(bins: Bins, ns: float) -> float:
    if ns <= bins.low_ns:
        return 0.0
    return min(1.0, (math.log(ns) - math.log(bins.low_ns)) / (math.log(bins.high_ns) - math.log(bins.low_ns)))


def _waterfalls(roots: Sequence[SpanRecord]) -> str:
    if not roots:
        return '<p class="empty">No turns match.</p>'
    return "".join(_waterfall(root, open_=i < 3) for i, root in enumerate(roots))


def _waterfall(root: SpanRecord, *, open_: bool, track: int = 400) -> str:
    total = max(1, root.duration_ns)
    when = datetime.fromtimestamp(root.start_ns / 1e9).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    rows = []
    for depth, span in walk(root):
        offset = span.start_ns - root.start_ns
        x = min(track - 1.0, max(0.0, offset / total * track))
        w = max(1.0, min(track - x, span.duration_ns / total * track))
        name_class = ' class="error"' if span.status == "ERROR" else ""
        tip = f"{span.label}: +{offset / 1e6:.3f} ms, {format_ms(span.duration_ns)}"
        rows.append(
            f'<tr><td style="padding-left:{8 + depth * 16}px"{name_class}>{e(span.label)}</td>'
            f"<td>{e(span.tier)}</td>"
            f'<td class="num">+{offset / 1e6:.3f} ms</td>'
            f'<td class="num">{e(format_ms(span.duration_ns))}</td>'
            f'<td class="track"><svg width="100%" height="12" viewBox="0 0 {track} 12" '
            f'preserveAspectRatio="none" role="img" aria-label="{e(tip)}">'
            f'<rect class="bar" x="{x:.1f}" y="1" width="{w:.1f}" height="10">'
            f"<title>{e(tip)}</title></rect></svg></td></tr>"
        )
    summary = f"{e(root.name)} · {e(format_ms(root.duration_ns))} · {e(when)} · trace {e(root.trace_id)}"
    return (
        f'<details class="turn"{" open" if open_ else ""}><summary>{summary}</summary>'
        '<table class="wf"><thead><tr><th>span</th><th>tier</th><th>start</th><th>duration</th>'
        f"<th></th></tr></thead><tbody>{''.join(rows)}</tbody></table></details>"
    )
