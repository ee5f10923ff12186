"""Sample collection and the summaries the benchmarks print."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Samples:
    """Durations of one operation on one target, in seconds (wall clock and this process's CPU)."""

    figure: str
    target: str
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        return _percentile(self.seconds, q)

    @property
    def p50(self) -> float:
        return self.percentile(0.50)

    @property
    def p99(self) -> float:
        return self.percentile(0.99)

    @property
    def cpu_p50(self) -> float:
        return _percentile(self.cpu, 0.50)

    async def measure(self, operation: Callable[[], Awaitable[Any]]) -> None:
        """Time one call of `operation` and keep its wall and CPU seconds."""
        cpu, start = time.process_time(), time.perf_counter()
        await operation()
        self.seconds.append(time.perf_counter() - start)
        self.cpu.append(time.process_time() - cpu)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


async def timed(operation: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await operation()
    return time.perf_counter() - start


@dataclass
class Report:
    """All figures of one run, printable as a table and writable as JSON."""

    title: str
    samples: dict[tuple[str, str], Samples] = field(default_factory=dict)
    rates: dict[tuple[str, str], float] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def series(self, figure: str, target: str) -> Samples:
        return self.samples.setdefault((figure, target), Samples(figure, target))

    def p50(self, figure: str, target: str) -> float:
        found = self.samples.get((figure, target))
        return found.p50 if found else math.nan

    def ratio(self, figure: str, target: str, floor: str, *, at: float = 0.50) -> float:
        """`target`'s percentile `at` over `floor`'s p50, both of `figure`."""
        found = self.samples.get((figure, target))
        return found.percentile(at) / self.p50(figure, floor) if found else math.nan

    def check(self, name: str, value: float, limit: float, *, higher_is_better: bool = False) -> None:
        ok = value >= limit if higher_is_better else value <= limit
        self.checks.append(
            {"target": name, "value": value, "limit": limit, "ok": bool(ok and not math.isnan(value))}
        )

    def table(self, baselines: tuple[str, ...]) -> str:
        header = ["figure", "target", "p50 ms", "p99 ms", "cpu p50 ms"] + [f"p50 / {b}" for b in baselines]
        rows = [header]
        for (figure, target), s in self.samples.items():
            cpu = "" if not s.cpu else f"{s.cpu_p50 * 1e3:.3f}"
            row = [figure, target, f"{s.p50 * 1e3:.3f}", f"{s.p99 * 1e3:.3f}", cpu]
            for b in baselines:
                # "get n=1000 [lru cold]" compares with the baselines' "get n=1000".
                base = self.p50(figure.split(" [")[0], b)
                row.append("" if math.isnan(base) or b == target else f"{s.p50 / base:.3f}")
            rows.append(row)
        for (figure, target), rate in self.rates.items():
            row = [figure, target, f"{rate:.0f}/s", "", ""]
            for b in baselines:
                base = self.rates.get((figure, b), math.nan)
                row.append("" if math.isnan(base) or b == target else f"{rate / base:.2f}x")
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def check_lines(self) -> str:
        return "\n".join(
            f"{'PASS' if c['ok'] else 'MISS'}  {c['target']}: {c['value']:.3f} (limit {c['limit']:.3f})"
            for c in self.checks
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "figures": [
                {
                    "figure": s.figure,
                    "target": s.target,
                    "n": len(s.seconds),
                    "p50_ms": s.p50 * 1e3,
                    "p99_ms": s.p99 * 1e3,
                    "cpu_p50_ms": s.cpu_p50 * 1e3,
                }
                for s in self.samples.values()
            ],
            "rates": [
                {"figure": f, "target": t, "per_second": r} for (f, t), r in self.rates.items()
            ],
            "checks": self.checks,
            "notes": self.notes,
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2), encoding="utf-8")
