"""Recording from library code: operations, notes, counters and plain spans.

Each call records on the App in flight (`recorder.current_recorder`): its own SDK, or
the OpenTelemetry API's global providers. Failures record only their exception type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from .names import ERROR_TYPE
from .recorder import Operation, _current, current_recorder


def operation(name: str, *, backend: str, **attributes: Any) -> Operation:
    """A session or memory operation: span `name` plus one `ifriend.operation.duration` point,
    recorded on the App in flight. Attribute names with dots go in as
    `**{"ifriend.tier": "lru"}`."""
    return current_recorder().operation(name, backend=backend, **attributes)


def note(attributes: Mapping[str, Any] | None = None, /, **more: Any) -> None:
    """Add attributes to the operation in flight (or, outside one, to the current span)."""
    values = {**attributes, **more} if attributes else more
    current = _current.get()
    if current is not None:
        current.set_attributes(values)
    else:
        trace.get_current_span().set_attributes(values)


def count(
    name: str, value: int = 1, attributes: Mapping[str, Any] | None = None, **more: Any
) -> None:
    """Add `value` to the counter `name` (created on first use), with `attributes`.

    `count(STALE_WRITES, backend="tiered")`; attribute values must be few (a reason, a
    tier), never ids or text.
    """
    current_recorder().count(name, value, {**attributes, **more} if attributes else more)


def current_operation() -> Operation | None:
    """The operation in flight in this task, if any."""
    return _current.get()


def current_span() -> Span:
    """The span current in this task (a no-op span outside any)."""
    return trace.get_current_span()


def current_trace_id() -> str | None:
    """The current trace id as 32 hex digits (for log lines), or None outside a trace."""
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


class _PlainSpan:
    """The context manager `operation_span` returns (lighter than a generator-based one)."""

    __slots__ = ("name", "kind", "attributes", "span", "_context_token")

    def __init__(self, name: str, kind: SpanKind, attributes: dict[str, Any]) -> None:
        self.name, self.kind, self.attributes = name, kind, attributes

    def __enter__(self) -> Span:
        self.span = span = current_recorder().start_span(self.name, kind=self.kind, attributes=self.attributes)
        self._context_token = otel_context.attach(trace.set_span_in_context(span))
        return span

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        otel_context.detach(self._context_token)
        span = self.span
        if exc_type is not None:
            span.set_attribute(ERROR_TYPE, exc_type.__qualname__)
            span.set_status(Status(StatusCode.ERROR))
        span.end()


def operation_span(name: str, *, kind: SpanKind = SpanKind.INTERNAL, **attributes: Any) -> _PlainSpan:
    """A plain span named `name` (current inside `with`) whose failures record only the
    error type, never its text.

    For a database round trip: `kind=SpanKind.CLIENT`, the attributes of `db_attributes`
    and `db.operation.name`, named by `span_name`; never a statement or its values.
    """
    return _PlainSpan(name, kind, attributes)
