"""`ifriend traces`: latency per operation and tier, over time, and the slowest turns.

Computed from the span records of `records`; printed as a table and waterfalls here,
drawn as a page by `html`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from .records import SpanRecord, span_matches, walk

BLOCKS = " ▁▂▃▄▅▆▇█"
HISTOGRAM_BINS = 16
WATERFALL_WIDTH = 40


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
