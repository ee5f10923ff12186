"""Telemetry off and on in one process, switched operation by operation.

OpenTelemetry's global providers can be set only once, so the benchmark installs a
provider that hands each call to the real SDK (`[telemetry]` as configured: a batch
exporter to a JSON-lines file) while `enabled`, and to the API's no-op otherwise. Off
costs one extra Python call per span and per measurement over a process that has no
SDK at all (well under a microsecond), so the measured overhead is if anything a
little low by that much.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import NoOpMeter

from ..telemetry.setup import Telemetry


class Switch:
    """Which telemetry is on (0: none, i: the i-th given); read at every span and measurement."""

    mode = 0


class SwitchTracer(trace.Tracer):
    def __init__(self, switch: Switch, tracers: list[trace.Tracer]) -> None:
        self.switch, self.tracers = switch, [trace.NoOpTracer(), *tracers]

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return self.tracers[self.switch.mode].start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self.tracers[self.switch.mode].start_as_current_span(*args, **kwargs)


class SwitchTracerProvider(trace.TracerProvider):
    def __init__(self, switch: Switch, providers: Sequence[trace.TracerProvider]) -> None:
        self.switch, self.providers = switch, providers

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return SwitchTracer(self.switch, [p.get_tracer(*args, **kwargs) for p in self.providers])


class _SwitchInstrument:
    def __init__(self, switch: Switch, instruments: list[Any]) -> None:
        self.switch, self.instruments = switch, [None, *instruments]

    def add(self, amount: float, attributes: Any = None, context: Any = None) -> None:
        mode = self.switch.mode
        if mode:
            self.instruments[mode].add(amount, attributes, context)

    def record(self, amount: float, attributes: Any = None, context: Any = None) -> None:
        mode = self.switch.mode
        if mode:
            self.instruments[mode].record(amount, attributes, context)


class SwitchMeter(NoOpMeter):
    """Counters and histograms follow the switch; other instruments are no-ops."""

    def __init__(self, switch: Switch, meters: list[metrics.Meter], name: str) -> None:
        super().__init__(name)
        self.switch, self.meters = switch, meters

    def create_counter(self, name: str, unit: str = "", description: str = "") -> Any:
        return _SwitchInstrument(self.switch, [m.create_counter(name, unit, description) for m in self.meters])

    def create_histogram(
        self,
        name: str,
        unit: str = "",
        description: str = "",
        *,
        explicit_bucket_boundaries_advisory: Sequence[float] | None = None,
    ) -> Any:
        made = [
            m.create_histogram(
                name, unit, description, explicit_bucket_boundaries_advisory=explicit_bucket_boundaries_advisory
            )
            for m in self.meters
        ]
        return _SwitchInstrument(self.switch, made)


class SwitchMeterProvider(metrics.MeterProvider):
    def __init__(self, switch: Switch, providers: Sequence[metrics.MeterProvider]) -> None:
        self.switch, self.providers = switch, providers

    def get_meter(self, name: str, *args: Any, **kwargs: Any) -> metrics.Meter:
        return SwitchMeter(self.switch, [p.get_meter(name, *args, **kwargs) for p in self.providers], name)


def install_switch(telemetries: Sequence[Telemetry]) -> Switch | None:
    """Make `telemetries` the process's providers behind a switch (off to begin with;
    `switch.mode = i` turns the i-th on); None if the process already has providers."""
    from opentelemetry.metrics._internal import _ProxyMeterProvider

    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return None
    if not isinstance(metrics.get_meter_provider(), _ProxyMeterProvider):
        return None
    switch = Switch()
    trace.set_tracer_provider(SwitchTracerProvider(switch, [t.tracer_provider for t in telemetries]))
    metrics.set_meter_provider(SwitchMeterProvider(switch, [t.meter_provider for t in telemetries]))
    return switch
