"""The benchmark's provider switch: telemetry off and on in one process, call by call."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ifriend.bench.overhead import Switch, SwitchMeterProvider, SwitchTracerProvider


def test_the_switch_sends_each_call_to_the_chosen_provider():
    exporters = [InMemorySpanExporter(), InMemorySpanExporter()]
    readers = [InMemoryMetricReader(), InMemoryMetricReader()]
    tracers, meters = [], []
    for exporter, reader in zip(exporters, readers):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracers.append(provider)
        meters.append(MeterProvider(metric_readers=[reader]))
    switch = Switch()
    tracer = SwitchTracerProvider(switch, tracers).get_tracer("ifriend")
    histogram = SwitchMeterProvider(switch, meters).get_meter("ifriend").create_histogram(
        "ifriend.operation.duration", unit="s", explicit_bucket_boundaries_advisory=[0.1, 1.0]
    )
    for mode in (0, 1, 2, 2):
        switch.mode = mode
        with tracer.start_as_current_span(f"op{mode}"):
            pass
        tracer.start_span(f"raw{mode}").end()
        histogram.record(0.5)
    assert [s.name for s in exporters[0].get_finished_spans()] == ["op1", "raw1"]
    assert [s.name for s in exporters[1].get_finished_spans()] == ["op2", "raw2", "op2", "raw2"]
    counts = []
    for reader in readers:
        [point] = reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics[0].data.data_points
        counts.append(point.count)
    assert counts == [1, 2]
