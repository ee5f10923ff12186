"""Shared fixtures: captured spans, servers, and the rule that CI never skips a server test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from .servers import PrivateCluster, PrivateRedis

_EXPORTER = InMemorySpanExporter()
_METRICS = InMemoryMetricReader()


def pytest_configure(config: pytest.Config) -> None:
    # The process's global providers (set once): an App started by a test keeps them.
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[_METRICS]))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans finished during the test (the exporter is emptied before it)."""
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


@pytest.fixture
def metric_points() -> Iterator[MetricPoints]:
    """Metric values recorded during the test: `.total(name, **attributes)`, `.points(...)`."""
    points = MetricPoints(_METRICS)
    yield points


class MetricPoints:
    """Reads the global in-memory metric reader; values are relative to the fixture's start."""

    def __init__(self, reader: InMemoryMetricReader) -> None:
        self.reader = reader
        self.baseline = self._snapshot()

    def _snapshot(self) -> dict[tuple[str, frozenset[tuple[str, object]]], object]:
        found: dict[tuple[str, frozenset[tuple[str, object]]], object] = {}
        data = self.reader.get_metrics_data()
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for point in metric.data.data_points:
                        key = (metric.name, frozenset((point.attributes or {}).items()))
                        found[key] = point
        return found

    def points(self, name: str, **attributes: object) -> list[tuple[dict[str, object], float]]:
        """(attributes, value since the start) of every point of `name` whose attributes
        include `attributes`; a histogram's value is its count."""
        wanted = {k.replace("__", "."): v for k, v in attributes.items()}
        found = []
        for (metric, attrs), point in self._snapshot().items():
            if metric != name or any(dict(attrs).get(k) != v for k, v in wanted.items()):
                continue
            value = getattr(point, "value", None)
            if value is None:
                value = point.count
            before = self.baseline.get((metric, attrs))
            if before is not None:
                value -= getattr(before, "value", None) or getattr(before, "count", 0)
            found.append((dict(attrs), value))
        return [(a, v) for a, v in found if v]

    def total(self, name: str, **attributes: object) -> float:
        """The sum over matching points (attribute names: `__` stands for `.`)."""
        return sum(v for _, v in self.points(name, **attributes))


def last_span(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = [s for s in exporter.get_finished_spans() if s.name == name]
    assert found, f"no span named {name}"
    return found[-1]


def server_url(variable: str) -> str:
    """The URL of a shared test server; skipped locally if unset, a failure under CI."""
    url = os.environ.get(variable)
    if url:
        return url
    reason = f"{variable} is not set (`make test` starts the servers and sets it)"
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{reason}; CI is set, so a missing server is a failure", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    """A redis-server of this test alone, which it may stop, pause and restart."""
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_cluster(tmp_path) -> Iterator[PrivateCluster]:
    """A Redis Cluster (3 masters + 3 replicas) of this test alone: it may pause, kill and
    fail over nodes (see `PrivateCluster`). Starting it takes about two seconds."""
    cluster = PrivateCluster(tmp_path)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
