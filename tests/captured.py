"""What the test process records: every span and metric goes to the in-memory exporter and
reader installed as the global providers (`install()`, once, by tests/conftest.py)."""

from __future__ import annotations

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

SPANS = InMemorySpanExporter()
METRICS = InMemoryMetricReader()


def install() -> None:
    """Make the exporter and reader the process's global providers (an App keeps them)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(SPANS))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[METRICS]))


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
    """The last finished span named `name` (the test fails if there is none)."""
    found = [s for s in exporter.get_finished_spans() if s.name == name]
    assert found, f"no span named {name}"
    return found[-1]
