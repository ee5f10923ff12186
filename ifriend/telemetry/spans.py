"""ifriend's own spans when an App owns its SDK, without the SDK's per-span bookkeeping.

The SDK's `Span` takes a lock and validates the value on every attribute call, runs
every processor's `on_start`, and is built even to be dropped by a processor later. Its
cost (some 35 µs of CPU a span here) was most of the telemetry overhead of an LRU-hit
read. ifriend's operation and round-trip spans carry only attributes ifriend builds
(str, int, float, bool, never None), so a `LiteSpan` keeps them in a plain dict and,
once ended, hands itself to the App's batch processor as the `ReadableSpan` it is
(some 5 µs). A span the sampler drops is a `NonRecordingSpan` carrying the trace on
(children follow their parent's decision): nothing else is built.

Sampling matches the SDK's `ParentBased(TraceIdRatioBased(ratio))` exactly, so ADK's
spans (made by the SDK's tracer of the same App) and these agree within a trace.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.util.types import AttributeValue

from .names import ERROR_TYPE

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_UNSET = Status(StatusCode.UNSET)
_ERROR = Status(StatusCode.ERROR)
_LIMIT = TraceIdRatioBased.TRACE_ID_LIMIT
_getrandbits = random.getrandbits
_time_ns = time.time_ns


class SpanSink:
    """Starts `LiteSpan`s of one scope and ends them into `processor`, sampled at `ratio`."""

    def __init__(
        self, processor: SpanProcessor, resource: Resource, scope: str, ratio: float
    ) -> None:
        self.processor = processor
        self.resource = resource
        self.scope = InstrumentationScope(scope)
        self.ratio = ratio
        self._bound = _LIMIT + 1 if ratio >= 1.0 else TraceIdRatioBased.get_bound_for_rate(ratio)
        self.extra: list[SpanProcessor] = []  # processors the host added (ADK's web UI)
        self.ended = processor.on_end

    def add(self, processor: SpanProcessor) -> None:
        """Hand every span to `processor` too (its `on_start` and `on_end`)."""
        self.extra.append(processor)
        processors = [self.processor, *self.extra]

        def ended(span: ReadableSpan) -> None:
            for each in processors:
                each.on_end(span)

        self.ended = ended

    def start(
        self,
        name: str,
        parent: SpanContext,
        kind: SpanKind,
        attributes: dict[str, Any],
        start_time: int,
        links: Sequence[Link] = (),
    ) -> trace.Span:
        """A span under `parent` (`INVALID_SPAN_CONTEXT` for a root) that owns `attributes`."""
        if parent.is_valid:
            trace_id = parent.trace_id
            sampled = parent.trace_flags.sampled
            state = parent.trace_state
        else:
            trace_id = _getrandbits(128) or 1
            sampled = trace_id & _LIMIT < self._bound
            state = INVALID_SPAN_CONTEXT.trace_state
            parent = None  # type: ignore[assignment]
        span_id = _getrandbits(64) or 1
        if not sampled:
            return NonRecordingSpan(SpanContext(trace_id, span_id, False, _NOT_SAMPLED, state))
        context = SpanContext(trace_id, span_id, False, _SAMPLED, state)
        span = LiteSpan(self, name, context, parent, kind, attributes, start_time, links)
        for each in self.extra:
            each.on_start(span, None)
        return span


class LiteSpan(trace.Span, ReadableSpan):
    """A recording span whose attributes are a plain dict (see the module's docstring)."""

    def __init__(
        self,
        sink: SpanSink,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, Any],
        start_time: int,
        links: Sequence[Link] = (),
    ) -> None:
        self._sink = sink
        self._name = name
        self._context = context
        self._parent = parent
        self._kind = kind
        self._attributes = attributes
        self._events: list[Event] = []
        self._links = links
        self._resource = sink.resource
        self._instrumentation_scope = sink.scope
        self._instrumentation_info = None
        self._status = _UNSET
        self._start_time = start_time
        self._end_time: int | None = None

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        if self._end_time is None and value is not None:
            self._attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        if self._end_time is None:
            self._attributes.update({k: v for k, v in attributes.items() if v is not None})

    def add_event(
        self, name: str, attributes: Mapping[str, AttributeValue] | None = None, timestamp: int | None = None
    ) -> None:
        if self._end_time is None:
            self._events.append(Event(name, dict(attributes or {}), timestamp or _time_ns()))

    def add_link(self, context: SpanContext, attributes: Mapping[str, AttributeValue] | None = None) -> None:
        if self._end_time is None and context.is_valid:
            self._links = (*self._links, Link(context, dict(attributes or {})))

    def update_name(self, name: str) -> None:
        if self._end_time is None:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._end_time is not None:
            return
        if isinstance(status, StatusCode):
            status = _ERROR if status is StatusCode.ERROR and not description else Status(status, description)
        if self._status.status_code is not StatusCode.OK:  # OK is final, as in the SDK
            self._status = status

    def record_exception(
        self,
        exception: BaseException,
        attributes: Mapping[str, AttributeValue] | None = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """Only the exception's type (ifriend never records an exception's text)."""
        self.add_event("exception", {"exception.type": type(exception).__qualname__, **(attributes or {})}, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is None:
            self._end_time = end_time or _time_ns()
            self._sink.ended(self)

    def failed(self, error: type[BaseException]) -> None:
        """Mark the span failed by `error`: its type, never its message."""
        self._attributes[ERROR_TYPE] = error.__qualname__
        self._status = _ERROR

    def __repr__(self) -> str:
        return f"LiteSpan({self._name!r}, span_id={self._context.span_id:016x})"
