"""Tracers and meters that send each call to the recorder in flight (`current_recorder()`).

- `tracer` and `meter` (ifriend's scope, `ifriend.telemetry.tracer` / `.meter`): what
  plugins use for spans and instruments of their own. They follow the App whose
  operation or turn is running; outside any App, the global API.
- `RoutingTracerProvider` / `RoutingMeterProvider`: the process's global providers,
  installed by the first App that exports, when the process has none of its own. Other
  libraries' spans and metrics (ADK's `invoke_agent`, `generate_content`, ...) then go
  to the App whose turn made them, through that App's SDK (sampled, batched and
  redacted as its own); to nowhere when that App exports nothing.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.trace import Link, NoOpTracerProvider, Span, SpanKind, Status, StatusCode

from .names import ERROR_TYPE
from .processor import SharedSpanProcessor
from .recorder import current_recorder, running_telemetries

_NO_TRACER = NoOpTracerProvider().get_tracer("ifriend")
_NO_METERS = NoOpMeterProvider()


class ScopeTracer(trace.Tracer):
    """ifriend's tracer: spans of the recorder in flight (see `Recorder.start_span`)."""

    def start_span(
        self,
        name: str,
        context: Any = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        return current_recorder().start_span(
            name, context=context, kind=kind, attributes=attributes, links=links, start_time=start_time
        )

    @contextmanager
    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: Any = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[Span]:
        """As the API's, but a failure records only its type (`error.type`), never its text."""
        span = self.start_span(name, context, kind, attributes, links, start_time)
        with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
            try:
                yield span
            except BaseException as exc:
                span.set_attribute(ERROR_TYPE, type(exc).__qualname__)
                span.set_status(Status(StatusCode.ERROR))
                raise
            finally:
                if end_on_exit:
                    span.end()


class _Instrument:
    """A counter, up-down counter, histogram or gauge created on the provider of each call."""

    def __init__(self, meter: _RoutedMeter, kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self._meter, self._kind, self._args, self._kwargs = meter, kind, args, kwargs
        self._made: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    def _instrument(self) -> Any:
        provider = self._meter.resolve()
        found = self._made.get(provider)
        if found is None:
            meter = self._meter.meter_of(provider)
            found = self._made[provider] = getattr(meter, f"create_{self._kind}")(*self._args, **self._kwargs)
        return found

    def add(self, amount: float, attributes: Any = None, context: Any = None) -> None:
        self._instrument().add(amount, attributes, context)

    def record(self, amount: float, attributes: Any = None, context: Any = None) -> None:
        self._instrument().record(amount, attributes, context)

    def set(self, amount: float, attributes: Any = None, context: Any = None) -> None:
        self._instrument().set(amount, attributes, context)


class _RoutedMeter(metrics.NoOpMeter):
    """A meter whose synchronous instruments record on `resolve()`'s provider at each call;
    observable instruments are no-ops (a callback cannot follow a call)."""

    def __init__(
        self, resolve: Callable[[], metrics.MeterProvider], name: str, version: str | None = None,
        schema_url: str | None = None, attributes: Any = None,
    ) -> None:
        super().__init__(name, version=version, schema_url=schema_url)
        self.resolve = resolve
        self._identity = (name, version, schema_url, attributes)
        self._meters: weakref.WeakKeyDictionary[Any, metrics.Meter] = weakref.WeakKeyDictionary()

    def meter_of(self, provider: metrics.MeterProvider) -> metrics.Meter:
        found = self._meters.get(provider)
        if found is None:
            name, version, schema_url, attributes = self._identity
            found = self._meters[provider] = provider.get_meter(
                name, version=version, schema_url=schema_url, attributes=attributes
            )
        return found

    def create_counter(self, *args: Any, **kwargs: Any) -> Any:
        return _Instrument(self, "counter", args, kwargs)

    def create_up_down_counter(self, *args: Any, **kwargs: Any) -> Any:
        return _Instrument(self, "up_down_counter", args, kwargs)

    def create_histogram(self, *args: Any, **kwargs: Any) -> Any:
        return _Instrument(self, "histogram", args, kwargs)

    def create_gauge(self, *args: Any, **kwargs: Any) -> Any:
        return _Instrument(self, "gauge", args, kwargs)


def _recorder_meters() -> metrics.MeterProvider:
    return current_recorder().meter_provider


tracer = ScopeTracer()
"""ifriend's tracer: `tracer.start_span(...)` records on the App in flight."""

meter: metrics.Meter = _RoutedMeter(_recorder_meters, "ifriend")
"""ifriend's meter: instruments created once that record on the App in flight."""


# -- the process's global providers ----------------------------------------------------------


class RoutingTracer(trace.Tracer):
    """Another library's tracer: the SDK tracer of the App in flight, or a no-op."""

    def __init__(self, identity: tuple[Any, ...]) -> None:
        self._identity = identity
        self._tracers: weakref.WeakKeyDictionary[Any, trace.Tracer] = weakref.WeakKeyDictionary()

    def _tracer(self) -> trace.Tracer:
        telemetry = current_recorder().telemetry
        if telemetry is None:
            return _NO_TRACER
        provider = telemetry.tracer_provider
        found = self._tracers.get(provider)
        if found is None:
            found = self._tracers[provider] = provider.get_tracer(*self._identity)
        return found

    def start_span(self, *args: Any, **kwargs: Any) -> Span:
        return self._tracer().start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._tracer().start_as_current_span(*args, **kwargs)


class RoutingTracerProvider(trace.TracerProvider):
    """The global tracer provider ifriend installs: tracers that follow the App in flight.

    A processor added to it (`adk web` adds the one behind its trace view) sees every
    exporting App's spans: it is added to each App's SDK, running or started later.
    """

    def __init__(self) -> None:
        self.processors: list[SpanProcessor] = []

    def add_span_processor(self, processor: SpanProcessor) -> None:
        shared = SharedSpanProcessor(processor)
        self.processors.append(shared)
        for telemetry in running_telemetries():
            telemetry.add_span_processor(shared)

    def shutdown(self) -> None:
        for shared in self.processors:
            shared.inner.shutdown()

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> trace.Tracer:
        return RoutingTracer((instrumenting_module_name, instrumenting_library_version, schema_url, attributes))


def _app_sdk_meters() -> metrics.MeterProvider:
    telemetry = current_recorder().telemetry
    return telemetry.meter_provider if telemetry is not None else _NO_METERS


class RoutingMeterProvider(metrics.MeterProvider):
    """The global meter provider ifriend installs: instruments that follow the App in flight."""

    def get_meter(
        self, name: str, version: str | None = None, schema_url: str | None = None, attributes: Any = None
    ) -> metrics.Meter:
        return _RoutedMeter(_app_sdk_meters, name, version, schema_url, attributes)
