"""JSON-lines exporters: one span (or one metric) per line, the file `ifriend traces` reads.

A span line::

    {"type": "span", "name": "ifriend.session.get_session", "trace_id": "<32 hex>",
     "span_id": "<16 hex>", "parent_id": "<16 hex>" | null, "kind": "INTERNAL",
     "start_ns": 1700000000000000000, "end_ns": 1700000000000250000,
     "status": "UNSET" | "OK" | "ERROR", "attributes": {...},
     "events": [{"name": "ack", "time_ns": ..., "attributes": {...}}],
     "scope": "ifriend", "service": "ifriend"}

A metric line (written at each metric export, cumulative)::

    {"type": "metric", "time_ns": ..., "name": "ifriend.lru.hits", "unit": "1",
     "points": [{"attributes": {...}, "value": 42}]}          # a counter
     "points": [{"attributes": {...}, "count": 9, "sum": 0.01,
                 "bounds": [...], "buckets": [...]}]}           # a histogram

Lines are appended (several processes may share a file); a batch is one write. The file
is rotated by size (`[telemetry] max_file_bytes`, `max_files`): `traces.jsonl.1` holds
the lines before those of `traces.jsonl`, `.2` those before, and so on.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

try:
    import fcntl
except ImportError:  # not on Windows
    fcntl = None  # type: ignore[assignment]


# Spans serialized between two releases of the GIL (a batch is ~8 µs a span of Python).
YIELD_EVERY = 32


class _LineFile:
    """An append-only file opened on first write, shared by the span and metric exporters.

    With `max_bytes`, a batch that would take the file past it first rotates the set:
    `traces.jsonl` becomes `traces.jsonl.1`, `.1` becomes `.2`, ... and the oldest beyond
    `max_files` (the current file included) is deleted. A batch is never split across
    files. Processes sharing the file take a lock (on its folder) around each batch, and
    one that finds the file rotated by another reopens it.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int = 0, max_files: int = 1) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.max_files = max(1, max_files)
        self._file: BinaryIO | None = None
        self._lock = threading.Lock()
        self._users = 0

    def write(self, lines: list[bytes]) -> None:
        if not lines:
            return
        data = b"".join(lines)
        with self._lock:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            with _locked(self.path.parent):
                file = self._open()
                size = os.fstat(file.fileno()).st_size
                if self.max_bytes and size and size + len(data) > self.max_bytes:
                    self._rotate()
                    file = self._open()
                file.write(data)
                file.flush()

    def _open(self) -> BinaryIO:
        """The file at `path`, opened again if another process rotated it away."""
        file = self._file
        if file is not None:
            try:
                if os.stat(self.path).st_ino == os.fstat(file.fileno()).st_ino:
                    return file
            except FileNotFoundError:
                pass
            file.close()
        self._file = file = open(self.path, "ab")  # noqa: SIM115 - kept open between batches
        return file

    def _rotate(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        names = [self.path, *rotated_names(self.path, self.max_files - 1)]
        names[-1].unlink(missing_ok=True)
        for older, newer in zip(reversed(names[1:]), reversed(names[:-1])):
            if newer.exists():
                os.replace(newer, older)

    def acquire(self) -> _LineFile:
        with self._lock:
            self._users += 1
        return self

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users <= 0 and self._file is not None:
                self._file.close()
                self._file = None


def rotated_names(path: Path, count: int) -> list[Path]:
    """`path.1` ... `path.<count>`: where rotation moves older lines, newest first."""
    return [path.with_name(f"{path.name}.{i}") for i in range(1, count + 1)]


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock between processes on `folder` (none where `fcntl` is missing)."""
    if fcntl is None:
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def span_record(span: ReadableSpan, service: str | None = None) -> dict[str, Any]:
    """One span as the plain data of its JSON line."""
    context = span.context
    parent = span.parent
    if service is None and span.resource is not None:
        service = span.resource.attributes.get("service.name")
    scope = span.instrumentation_scope
    events = span.events
    return {
        "type": "span",
        "name": span.name,
        "trace_id": "%032x" % context.trace_id,
        "span_id": "%016x" % context.span_id,
        "parent_id": "%016x" % parent.span_id if parent is not None else None,
        "kind": span.kind.name,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes),
        "events": [
            {"name": e.name, "time_ns": e.timestamp, "attributes": dict(e.attributes or {})}
            for e in events
        ]
        if events
        else [],
        "scope": scope.name if scope is not None else None,
        "service": service,
    }


def _dumps(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS)


class JsonLinesSpanExporter(SpanExporter):
    """Appends each span to `path` as one JSON line."""

    def __init__(self, path: str | os.PathLike[str], *, file: _LineFile | None = None) -> None:
        self.file = (file or _LineFile(path)).acquire()
        self.path = self.file.path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        services: dict[int, str | None] = {}
        for i, span in enumerate(spans):
            resource = span.resource
            key = id(resource)
            if key not in services:
                services[key] = resource.attributes.get("service.name") if resource else None
            lines.append(_dumps(span_record(span, services[key])))
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                time.sleep(0)  # let the event loop's thread take the GIL between chunks
        try:
            self.file.write(lines)
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.file.release()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class JsonLinesMetricExporter(MetricExporter):
    """Appends each metric to the same file as JSON lines (cumulative values)."""

    def __init__(self, path: str | os.PathLike[str], *, file: _LineFile | None = None) -> None:
        super().__init__(
            preferred_temporality={
                kind: AggregationTemporality.CUMULATIVE for kind in _instrument_kinds()
            }
        )
        self.file = (file or _LineFile(path)).acquire()

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        lines = []
        for resource_metrics in metrics_data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    points = [_point(p) for p in metric.data.data_points]
                    if not points:
                        continue
                    lines.append(
                        _dumps(
                            {
                                "type": "metric",
                                "time_ns": max(p.time_unix_nano for p in metric.data.data_points),
                                "name": metric.name,
                                "unit": metric.unit,
                                "points": points,
                            }
                        )
                    )
        try:
            self.file.write(lines)
        except OSError:
            return MetricExportResult.FAILURE
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.file.release()


def _point(point: Any) -> dict[str, Any]:
    attributes = dict(point.attributes or {})
    if isinstance(point, HistogramDataPoint):
        return {
            "attributes": attributes,
            "count": point.count,
            "sum": point.sum,
            "bounds": list(point.explicit_bounds),
            "buckets": list(point.bucket_counts),
        }
    if isinstance(point, NumberDataPoint):
        return {"attributes": attributes, "value": point.value}
    return {"attributes": attributes}


def _instrument_kinds() -> list[type]:
    from opentelemetry.sdk.metrics import (
        Counter,
        Histogram,
        ObservableCounter,
        ObservableGauge,
        ObservableUpDownCounter,
        UpDownCounter,
    )

    return [Counter, UpDownCounter, Histogram, ObservableCounter, ObservableUpDownCounter, ObservableGauge]


def line_file(path: str | os.PathLike[str], *, max_bytes: int = 0, max_files: int = 1) -> _LineFile:
    """A file the span and metric exporters can share, rotated by size (see `_LineFile`)."""
    return _LineFile(path, max_bytes=max_bytes, max_files=max_files)
