"""Where one App's spans and metrics go: its `Recorder`, and the operations it times.

An App owns a `Recorder`. While the App runs with an exporter, the recorder holds the
App's own SDK providers (`setup.Telemetry`), never the process's global ones: several
Apps in one process (tests, notebooks, a reload) each export to their own place.
Without an exporter (or before the App starts) it records through the OpenTelemetry
API's global providers, whatever the host process set up (nothing: a no-op).

Library code does not hold a recorder: `ifriend.telemetry.operation`, `note`, `count`,
`tracer` and `meter` follow the recorder of the operation or turn in flight in the task,
else the App whose `async with` the task runs in, else the latest App started.

The hot path (`Operation`) reads the clock once at each end; the span's times give the
duration metric. With the App's own SDK its span is a `spans.LiteSpan` whose
attribute dict is the operation's own (notes land in it directly); a span the sampler
drops builds nothing. Counters are sums kept in process and reported by observable
counters at each export; histogram points are handed to the SDK off the request path
(`deferred`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanKind, Status, StatusCode

from .names import (
    BACKEND,
    COUNTERS,
    DURATION_BUCKETS,
    ERROR_TYPE,
    OPERATION,
    OPERATION_DURATION,
    OUTCOME,
    TIER,
    TURN_DURATION,
    TURN_FIRST_REPLY,
)
from .spans import LiteSpan, SpanSink

if TYPE_CHECKING:
    from .deferred import DeferredPoints
    from .setup import Telemetry
    from .turns import Turn

SCOPE = "ifriend"
_time_ns = time.time_ns
_ERROR = Status(StatusCode.ERROR)

_current: ContextVar[Operation | None] = ContextVar("ifriend_operation", default=None)
_turn: ContextVar[Turn | None] = ContextVar("ifriend_turn", default=None)
_ambient: ContextVar[Recorder | None] = ContextVar("ifriend_recorder", default=None)
_running: list[Recorder] = []  # of running Apps, oldest first


class Recorder:
    """One App's telemetry: its own SDK while it runs with an exporter, else the global API."""

    def __init__(self) -> None:
        self._totals: dict[tuple[str, tuple[tuple[str, Any], ...]], float] = {}
        self._observed: set[str] = set()
        self._use_api()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, telemetry: Telemetry | None) -> None:
        """The App started: record into `telemetry` (its own SDK), or the global API if None."""
        if telemetry is None:
            self._use_api()
        else:
            self.telemetry = telemetry
            self.sink = telemetry.sink
            self._deferred = telemetry.deferred
            self.tracer = telemetry.tracer_provider.get_tracer(SCOPE)
            self.meter = telemetry.meter_provider.get_meter(SCOPE)
            self.duration, self.turn_duration, self.turn_first_reply = _histograms(self.meter)
            self._totals.clear()
            self._observed.clear()
            for name in COUNTERS:
                self._observe(name)
        if self not in _running:
            _running.append(self)
        _ambient.set(self)

    def stop(self) -> None:
        """The App stopped: back to the global API (the App's SDK is shut down by its lease)."""
        if self in _running:
            _running.remove(self)
        self._use_api()

    @property
    def tracer_provider(self) -> trace.TracerProvider:
        return self.telemetry.tracer_provider if self.telemetry else trace.get_tracer_provider()

    @property
    def meter_provider(self) -> metrics.MeterProvider:
        return self.telemetry.meter_provider if self.telemetry else metrics.get_meter_provider()

    def _use_api(self) -> None:
        global _api
        if _api is None:
            meter = metrics.get_meter(SCOPE)
            _api = (trace.get_tracer(SCOPE), meter, _histograms(meter))
        self.telemetry: Telemetry | None = None
        self.sink: SpanSink | None = None
        self._deferred: DeferredPoints | None = None
        self.tracer, self.meter, histograms = _api
        self.duration, self.turn_duration, self.turn_first_reply = histograms

    # -- recording -------------------------------------------------------------------------

    def operation(self, name: str, *, backend: str, **attributes: Any) -> Operation:
        """A session or memory operation (see `ifriend.telemetry.operation`)."""
        attributes[BACKEND] = backend
        return Operation(self, name, attributes)

    def start_span(
        self,
        name: str,
        *,
        context: otel_context.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
    ) -> Span:
        """A span of ifriend's (not made current) whose failures its caller records by type."""
        sink = self.sink
        if sink is None:
            return self.tracer.start_span(
                name,
                context=context,
                kind=kind,
                attributes=attributes,
                links=links,
                start_time=start_time,
                record_exception=False,
                set_status_on_exception=False,
            )
        parent = trace.get_current_span(context).get_span_context()
        return sink.start(
            name, parent, kind, dict(attributes) if attributes else {}, start_time or _time_ns(), links or ()
        )

    def record(self, histogram: Any, value: float, attributes: Mapping[str, Any] | None) -> None:
        """A point of `histogram` (one of this recorder's); with the App's own SDK, handed
        over off the request path (see `deferred`)."""
        deferred = self._deferred
        if deferred is None:
            histogram.record(value, attributes)
        else:
            deferred.record(histogram, value, attributes)

    def count(self, name: str, value: float = 1, attributes: Mapping[str, Any] | None = None) -> None:
        """Add `value` to counter `name` (created on first use) for `attributes`."""
        if self.telemetry is None:
            counter = _api_counters.get(name)
            if counter is None:
                counter = _api_counters[name] = self.meter.create_counter(
                    name, unit="1", description=COUNTERS.get(name, "")
                )
            counter.add(value, attributes)
            return
        key = (name, tuple(sorted(attributes.items())) if attributes else ())
        totals = self._totals
        totals[key] = totals.get(key, 0) + value
        if name not in self._observed:
            self._observe(name)

    def _observe(self, name: str) -> None:
        self._observed.add(name)
        totals = self._totals

        def observe(options: CallbackOptions) -> Iterable[Observation]:
            for (counter, attributes), value in list(totals.items()):
                if counter == name:
                    yield Observation(value, dict(attributes))

        self.meter.create_observable_counter(
            name, callbacks=[observe], unit="1", description=COUNTERS.get(name, "")
        )


def _histograms(meter: metrics.Meter) -> tuple[Any, Any, Any]:
    """The operation duration, turn duration and time-to-first-reply histograms of `meter`."""
    return (
        meter.create_histogram(
            OPERATION_DURATION,
            unit="s",
            description="Duration of session and memory operations",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        ),
        meter.create_histogram(
            TURN_DURATION,
            unit="s",
            description="Duration of chat turns, from receipt to the last reply",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        ),
        meter.create_histogram(
            TURN_FIRST_REPLY,
            unit="s",
            description="Time from a chat message's receipt to the first reply",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        ),
    )


# The global API's tracer, meter and histograms, and its counters by name: made once and
# shared by every recorder without an SDK of its own.
_api: tuple[trace.Tracer, metrics.Meter, tuple[Any, Any, Any]] | None = None
_api_counters: dict[str, Any] = {}

API = Recorder()
"""The recorder of code that runs outside any App: the global API's providers."""


def current_recorder() -> Recorder:
    """The recorder of the operation or turn in flight, else of the App this task runs
    under, else of the latest App started (else the global API's)."""
    op = _current.get()
    if op is not None:
        return op.recorder
    turn = _turn.get()
    if turn is not None:
        return turn.recorder
    ambient = _ambient.get()
    if ambient is not None and ambient in _running:
        return ambient
    return _running[-1] if _running else API


def running_telemetries() -> list[Telemetry]:
    """The own SDKs of the running Apps."""
    return [r.telemetry for r in _running if r.telemetry is not None]


class Operation:
    """One session or memory operation in flight: its span and its duration point.

    Use as `with recorder.operation(...) as op:`; `op.set_attribute(...)` and
    `ifriend.telemetry.note(...)` add to its attributes, which the span holds; the
    tier and outcome also label the duration metric. Without a noted tier, the tier
    is the backend (a plain backend answers everything itself).
    """

    __slots__ = ("recorder", "name", "attributes", "span", "_added", "_start", "_token", "_context_token")

    def __init__(self, recorder: Recorder, name: str, attributes: dict[str, Any]) -> None:
        self.recorder = recorder
        self.name = name
        self.attributes = attributes
        self.span: Span = INVALID_SPAN
        self._added: dict[str, Any] | None = None

    def __enter__(self) -> Operation:
        recorder = self.recorder
        self._start = start = _time_ns()
        sink = recorder.sink
        if sink is not None:  # the span shares the attributes dict: notes land in it
            parent = trace.get_current_span().get_span_context()
            self.span = span = sink.start(self.name, parent, SpanKind.INTERNAL, self.attributes, start)
        else:
            self._added = {}
            self.span = span = recorder.tracer.start_span(
                self.name,
                attributes=self.attributes,
                start_time=start,
                record_exception=False,
                set_status_on_exception=False,
            )
        self._context_token = otel_context.attach(trace.set_span_in_context(span))
        self._token = _current.set(self)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        end = _time_ns()
        _current.reset(self._token)
        otel_context.detach(self._context_token)
        attributes = self.attributes
        added = self._added
        span = self.span
        backend = attributes[BACKEND]
        tier = attributes.get(TIER)
        if tier is None:
            tier = attributes[TIER] = backend
            if added is not None:
                added[TIER] = tier
        labels = {OPERATION: self.name, BACKEND: backend, TIER: tier}
        if exc_type is not None:
            error = exc_type.__qualname__
            labels[ERROR_TYPE] = error
            labels[OUTCOME] = attributes[OUTCOME] = "error"
            if type(span) is LiteSpan:
                span.failed(exc_type)
            else:
                if added is not None:
                    added[ERROR_TYPE] = error
                    added[OUTCOME] = "error"
                span.set_status(_ERROR)
        else:
            labels[OUTCOME] = attributes.get(OUTCOME, "ok")
        if added:
            span.set_attributes(added)
        span.end(end)
        recorder = self.recorder
        recorder.record(recorder.duration, max(0, end - self._start) / 1e9, labels)

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value
        if self._added is not None:
            self._added[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self.attributes.update(attributes)
        if self._added is not None:
            self._added.update(attributes)
