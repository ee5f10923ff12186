"""`ifriend traces`: latency per operation and tier, over time, and the slowest turns.

Reads what the `jsonl` exporter writes (`ifriend.telemetry.jsonl`): a file with the
files rotated from it (`traces.jsonl.1`, `.2`, ...), or every such file in a folder.
Lines that are not spans (metrics) are skipped, and so are lines that do not parse (a
file being written, a truncated last line), counted.
"""

from __future__ import annotations

import fnmatch
import glob
import math
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

TURN = "ifriend.turn"
BLOCKS = " ▁▂▃▄▅▆▇█"
HISTOGRAM_BINS = 16
WATERFALL_WIDTH = 40
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.I)
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


# -- reading -------------------------------------------------------------------------------


@dataclass
class SpanRecord:
    """One span line."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    start_ns: int
    end_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)
    status: str = "UNSET"
    events: list[dict[str, Any]] = field(default_factory=list)
    children: list[SpanRecord] = field(default_factory=list, repr=False)

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)

    @property
    def tier(self) -> str:
        """The tier that answered; for a plain backend, the backend; for a round trip, its
        database; else `-`."""
        a = self.attributes
        return str(a.get("ifriend.tier") or a.get("db.system.name") or a.get("ifriend.backend") or "-")

    @property
    def label(self) -> str:
        """The name, and for a database round trip what it was for: `EVALSHA append · mirror_append`."""
        call = self.attributes.get("ifriend.call")
        return f"{self.name} · {call}" if call and call not in self.name else self.name

    @classmethod
    def from_line(cls, data: dict[str, Any]) -> SpanRecord:
        return cls(
            name=str(data["name"]),
            trace_id=str(data["trace_id"]),
            span_id=str(data["span_id"]),
            parent_id=data.get("parent_id") or None,
            start_ns=int(data["start_ns"]),
            end_ns=int(data["end_ns"]),
            attributes=dict(data.get("attributes") or {}),
            status=str(data.get("status") or "UNSET"),
            events=list(data.get("events") or []),
        )


@dataclass
class Loaded:
    spans: list[SpanRecord]
    files: list[Path]
    bad_lines: int = 0


_ROTATED = re.compile(r"\.jsonl\.(\d+)$")


def trace_files(path: Path) -> list[Path]:
    """`path` and the files rotated from it, oldest first; for a folder, every `*.jsonl`
    file of it so."""
    if path.is_dir():
        return [f for p in sorted(path.glob("*.jsonl")) if p.is_file() for f in trace_files(p)]
    rotated = []
    for sibling in path.parent.glob(f"{glob.escape(path.name)}.*"):
        found = _ROTATED.search(sibling.name)
        if found and sibling.name == f"{path.name}.{found.group(1)}" and sibling.is_file():
            rotated.append((int(found.group(1)), sibling))
    return [p for _, p in sorted(rotated, reverse=True)] + [path]


def load_spans(paths: Iterable[Path]) -> Loaded:
    spans: list[SpanRecord] = []
    files: list[Path] = []
    bad = 0
    for path in paths:
        files.append(path)
        with open(path, "rb") as lines:
            for line in lines:
                if not line.strip():
                    continue
                try:
                    data = orjson.loads(line)
                    if not isinstance(data, dict) or data.get("type", "span") != "span":
                        continue
                    spans.append(SpanRecord.from_line(data))
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    bad += 1
    return Loaded(spans, files, bad)


# -- filters -------------------------------------------------------------------------------


def parse_since(text: str, *, now_ns: int | None = None) -> int:
    """`10m`, `2h`, `1h30m`, `45s`, `7d` ago, or an ISO time (local if no zone): in ns."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    value = text.strip()
    parts = _DURATION.findall(value)
    if parts and _DURATION.sub("", value).strip() == "":
        seconds = sum(float(n) * _UNITS[unit.lower()] for n, unit in parts)
        return now_ns - int(seconds * 1e9)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration (10m, 2h, 1h30m, 7d) nor an ISO time "
            "(2026-01-31T09:00, 2026-01-31T09:00:00+00:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time
    return int(moment.timestamp() * 1e9)


def op_matches(name: str, patterns: Sequence[str]) -> bool:
    """A glob (`ifriend.session.*`) or a substring (`append`) of the span name (or label)."""
    if not patterns:
        return True
    for pattern in patterns:
        if any(c in pattern for c in "*?["):
            if fnmatch.fnmatchcase(name, pattern):
                return True
        elif pattern in name:
            return True
    return False


def span_matches(span: SpanRecord, patterns: Sequence[str]) -> bool:
    return op_matches(span.name, patterns) or op_matches(span.label, patterns)


def link(spans: list[SpanRecord]) -> list[SpanRecord]:
    """Attach children to their parents; the roots (turns first, then spans whose parent
    is not in the file)."""
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    for span in spans:
        span.children = []
    roots = []
    for span in spans:
        parent = by_id.get((span.trace_id, span.parent_id)) if span.parent_id else None
        if parent is None:
            roots.append(span)
        else:
            parent.children.append(span)
    for span in spans:
        span.children.sort(key=lambda s: s.start_ns)
    return roots


def turns(spans: list[SpanRecord]) -> list[SpanRecord]:
    """The turns: `ifriend.turn` spans; without any, every root span."""
    roots = link(spans)
    found = [s for s in spans if s.name == TURN]
    return found or roots


def walk(span: SpanRecord, depth: int = 0) -> Iterable[tuple[int, SpanRecord]]:
    yield depth, span
    for child in span.children:
        yield from walk(child, depth + 1)


def slowest_turns(
    spans: list[SpanRecord], n: int, *, since_ns: int | None = None, ops: Sequence[str] = ()
) -> list[SpanRecord]:
    """The `n` longest turns started after `since_ns` that hold a span matching `ops`."""
    chosen = []
    for root in turns(spans):
        if since_ns is not None and root.start_ns < since_ns:
            continue
        if ops and not any(span_matches(s, ops) for _, s in walk(root)):
            continue
        chosen.append(root)
    chosen.sort(key=lambda s: s.duration_ns, reverse=True)
    return chosen[:n]


# -- statistics ----------------------------------------------------------------------------


def percentile(ordered: Sequence[int], q: float) -> int:
    """Nearest rank of an ascending sequence."""
    if not ordered:
        return 0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass
class Stat:
    """Latencies of one operation answered by one tier."""

    operation: str
    tier: str
    durations: list[int]  # ns, ascending

    @property
    def count(self) -> int:
        return len(self.durations)

    def p(self, q: float) -> int:
        return percentile(self.durations, q)

    @property
    def max(self) -> int:
        return self.durations[-1] if self.durations else 0


def summarize(
    spans: Iterable[SpanRecord], *, since_ns: int | None = None, ops: Sequence[str] = ()
) -> list[Stat]:
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for span in spans:
        if since_ns is not None and span.start_ns < since_ns:
            continue
        if not span_matches(span, ops):
            continue
        groups[(span.label, span.tier)].append(span.duration_ns)
    return [
        Stat(name, tier, sorted(durations)) for (name, tier), durations in sorted(groups.items())
    ]


# -- over time -------------------------------------------------------------------------------

READ = "ifriend.session.get_session"
# Steps a timeline may take (s): the smallest that gives at most `max_points` points.
_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


@dataclass
class Timeline:
    """Equal time steps over the spans' starts; `series` per operation, `tiers` of reads."""

    start_ns: int
    step_ns: int
    points: int
    series: list[Series] = field(default_factory=list)
    tiers: dict[str, list[int]] = field(default_factory=dict)  # tier -> reads per step

    def at(self, i: int) -> int:
        """The start of step `i` (ns)."""
        return self.start_ns + i * self.step_ns


@dataclass
class Series:
    """An operation's latency per step: p50, p99 (ns; None where it has no span) and count."""

    operation: str
    p50: list[int | None]
    p99: list[int | None]
    counts: list[int]


def timeline(
    spans: Iterable[SpanRecord], *, since_ns: int | None = None, ops: Sequence[str] = (), max_points: int = 30
) -> Timeline | None:
    """ifriend's operations (`ifriend.*` spans: sessions, memory, turns) per time step:
    p50 and p99 of each, and which tier answered the reads (`get_session`). None
    without any such span."""
    chosen = [
        s
        for s in spans
        if s.name.startswith("ifriend.")
        and (since_ns is None or s.start_ns >= since_ns)
        and span_matches(s, ops)
    ]
    if not chosen:
        return None
    first = min(s.start_ns for s in chosen)
    last = max(s.start_ns for s in chosen)
    step = next((t for t in _STEPS if (last - first) / (t * 1e9) < max_points), None)
    step_ns = int((step or math.ceil((last - first) / 1e9 / max_points) or 1) * 1e9)
    start = first - first % step_ns
    points = (last - start) // step_ns + 1
    found = Timeline(start, step_ns, points)
    by_operation: dict[str, list[list[int]]] = defaultdict(lambda: [[] for _ in range(points)])
    for s in chosen:
        i = (s.start_ns - start) // step_ns
        by_operation[s.label][i].append(s.duration_ns)
        if s.name == READ:
            found.tiers.setdefault(s.tier, [0] * points)[i] += 1
    for operation, steps in sorted(by_operation.items()):
        ordered = [sorted(d) for d in steps]
        found.series.append(
            Series(
                operation,
                [percentile(d, 0.50) if d else None for d in ordered],
                [percentile(d, 0.99) if d else None for d in ordered],
                [len(d) for d in ordered],
            )
        )
    return found


@dataclass(frozen=True)
class Bins:
    """Log-spaced latency bins shared by every row, so rows compare at a glance."""

    low_ns: float
    high_ns: float
    count: int = HISTOGRAM_BINS

    @classmethod
    def over(cls, stats: Sequence[Stat], count: int = HISTOGRAM_BINS) -> Bins:
        values = [d for s in stats for d in (s.durations[0], s.durations[-1]) if s.durations]
        low = max(1.0, float(min(values))) if values else 1.0
        high = max(low * 1.0001, float(max(values))) if values else 2.0
        return cls(low, high, count)

    def index(self, ns: int) -> int:
        if ns <= self.low_ns:
            return 0
        span = math.log(self.high_ns) - math.log(self.low_ns)
        i = int((math.log(ns) - math.log(self.low_ns)) / span * self.count)
        return min(self.count - 1, max(0, i))

    def edge(self, i: int) -> float:
        """The lower bound of bin `i` (ns); `edge(count)` is the top."""
        ratio = self.high_ns / self.low_ns
        return self.low_ns * ratio ** (i / self.count)

    def counts(self, durations: Iterable[int]) -> list[int]:
        found = [0] * self.count
        for ns in durations:
            found[self.index(ns)] += 1
        return found


def sparkline(counts: Sequence[int]) -> str:
    top = max(counts) if counts else 0
    if top == 0:
        return " " * len(counts)
    return "".join(
        BLOCKS[0] if c == 0 else BLOCKS[max(1, round(c / top * (len(BLOCKS) - 1)))] for c in counts
    )


def format_ms(ns: float) -> str:
    ms = ns / 1e6
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    if ms >= 100:
        return f"{ms:.0f} ms"
    if ms >= 10:
        return f"{ms:.1f} ms"
    return f"{ms:.3f} ms"


def format_table(stats: Sequence[Stat]) -> str:
    if not stats:
        return "no spans match"
    bins = Bins.over(stats)
    header = ["operation", "tier", "count", "p50 ms", "p90 ms", "p99 ms", "max ms", "histogram"]
    rows = [header]
    for s in stats:
        rows.append(
            [
                s.operation,
                s.tier,
                str(s.count),
                f"{s.p(0.50) / 1e6:.3f}",
                f"{s.p(0.90) / 1e6:.3f}",
                f"{s.p(0.99) / 1e6:.3f}",
                f"{s.max / 1e6:.3f}",
                sparkline(bins.counts(s.durations)),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    right = {2, 3, 4, 5, 6}
    lines = []
    for r in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(
        f"histogram: {bins.count} log-spaced bins from {format_ms(bins.low_ns)} "
        f"to {format_ms(bins.high_ns)}, the same for every row"
    )
    return "\n".join(lines)


def format_waterfall(root: SpanRecord, *, width: int = WATERFALL_WIDTH) -> str:
    """The turn as an indented tree: name, tier, start offset, duration and a bar."""
    total = max(1, root.duration_ns)
    when = datetime.fromtimestamp(root.start_ns / 1e9).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    lines = [f"trace {root.trace_id}  {root.name}  {format_ms(root.duration_ns)}  at {when}"]
    rows = []
    for depth, span in walk(root):
        offset = span.start_ns - root.start_ns
        start = min(width - 1, max(0, int(offset / total * width)))
        length = max(1, round(span.duration_ns / total * width))
        length = min(length, width - start)
        bar = " " * start + "█" * length + " " * (width - start - length)
        name = "  " * depth + span.label + (" !" if span.status == "ERROR" else "")
        rows.append((name, span.tier, f"+{offset / 1e6:.3f} ms", format_ms(span.duration_ns), bar))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for name, tier, offset, duration, bar in rows:
        lines.append(
            f"  {name.ljust(widths[0])}  {tier.ljust(widths[1])}  {offset.rjust(widths[2])}"
            f"  {duration.rjust(widths[3])}  |{bar}|"
        )
    return "\n".join(lines)
