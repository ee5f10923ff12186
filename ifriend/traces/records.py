"""The spans of trace files: what the `jsonl` exporter writes (`ifriend.telemetry.jsonl`).

A file with the files rotated from it (`traces.jsonl.1`, `.2`, ...), or every such file
in a folder. Lines that are not spans (metrics) are skipped, and so are lines that do
not parse (a file being written, a truncated last line), counted. Then: which spans a
`--since` / `--op` filter keeps, and the turns with their spans nested.
"""

from __future__ import annotations

import fnmatch
import glob
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

TURN = "ifriend.turn"
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
