"""Spans and metrics of every session, memory and chat operation.

Library code calls these helpers; each App records into its own OpenTelemetry SDK
(`[telemetry] exporter`), or, without one, into the API's global providers (a no-op
unless the host process set one up). See `recorder` for which App a call records on.

- `operation(name, backend=...)`: a session or memory operation. A span named `name`
  (`ifriend.session.append_event`, `ifriend.memory.search_memory`) and one point of the
  `ifriend.operation.duration` histogram, by operation, backend, tier and outcome.
  Code below it adds what it learnt with `note(...)` (the tier that answered, events
  read, LRU state, ...).
- `operation_span(name, ...)`: a plain span, current inside `with`; a database round
  trip is a CLIENT one named by `db` (the database conventions).
- `count(name, ...)`: add to a counter (`ifriend.lru.hits`, `ifriend.slack.deduplicated`).
- `turn(channel=..., user_id=...)`: the span of one chat turn, under which ADK's spans
  and the session spans nest; time to ack, time to first reply, total.
- `tracer`, `meter`: for a plugin's own spans and instruments (they follow the App).

Privacy: no message text, state values, tokens or secrets go into attributes, and a
failure records only its exception type. User and session ids go through
`user_id_attribute` / `conversation_id_attribute` (hashed unless `[telemetry]
capture_user_ids = true`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from .db import batch_operation, db_attributes, span_name
from .names import (
    BACKEND,
    CALL,
    COUNTERS,
    DB_BATCH_SIZE,
    DB_COLLECTION,
    DB_NAMESPACE,
    DB_OPERATION,
    DB_PROCEDURE,
    DB_SYSTEM,
    DURATION_BUCKETS,
    ERROR_TYPE,
    LRU_HITS,
    LRU_MISSES,
    OPERATION,
    OPERATION_DURATION,
    OUTCOME,
    REDIS_FALLBACKS,
    REDIS_OUTAGES,
    REHYDRATIONS,
    SLACK_DEDUPE_UNAVAILABLE,
    SERVER_ADDRESS,
    SERVER_PORT,
    SLACK_DEDUPLICATED,
    SPANS_DROPPED,
    STALE_WRITES,
    TIER,
    TURN_DURATION,
    TURN_FIRST_REPLY,
)
from .privacy import Privacy, conversation_id_attribute, privacy, set_privacy, user_id_attribute
from .recorder import API, Operation, Recorder, _current, current_recorder
from .routing import meter, tracer
from .turns import Turn, current_turn, traced_turn, turn, turn_failed, turn_retried


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

    `count(SLACK_DEDUPLICATED, reason="retry")`; attribute values must be few
    (a reason, a tier), never ids or text.
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


__all__ = [
    "API",
    "BACKEND",
    "CALL",
    "COUNTERS",
    "DB_BATCH_SIZE",
    "DB_COLLECTION",
    "DB_NAMESPACE",
    "DB_OPERATION",
    "DB_PROCEDURE",
    "DB_SYSTEM",
    "DURATION_BUCKETS",
    "ERROR_TYPE",
    "LRU_HITS",
    "LRU_MISSES",
    "OPERATION",
    "OPERATION_DURATION",
    "OUTCOME",
    "REDIS_FALLBACKS",
    "REDIS_OUTAGES",
    "REHYDRATIONS",
    "SERVER_ADDRESS",
    "SERVER_PORT",
    "SLACK_DEDUPE_UNAVAILABLE",
    "SLACK_DEDUPLICATED",
    "SPANS_DROPPED",
    "STALE_WRITES",
    "TIER",
    "TURN_DURATION",
    "TURN_FIRST_REPLY",
    "Operation",
    "Privacy",
    "Recorder",
    "SpanKind",
    "Turn",
    "batch_operation",
    "conversation_id_attribute",
    "count",
    "current_operation",
    "current_recorder",
    "current_span",
    "current_trace_id",
    "current_turn",
    "db_attributes",
    "meter",
    "note",
    "operation",
    "operation_span",
    "privacy",
    "set_privacy",
    "span_name",
    "traced_turn",
    "tracer",
    "turn",
    "turn_failed",
    "turn_retried",
    "user_id_attribute",
]
