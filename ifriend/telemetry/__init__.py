"""Spans and metrics of every session, memory and chat operation (OpenTelemetry API only).

Library code calls these helpers; without an SDK configured (`[telemetry] exporter =
"none"`) the OpenTelemetry API is a no-op and they cost next to nothing. The SDK is set
up once per process by the App (`ifriend.telemetry.setup`).

- `operation(name, backend=...)`: a session or memory operation. A span named `name`
  (`ifriend.session.append_event`, `ifriend.memory.search_memory`) and one point of the
  `ifriend.operation.duration` histogram, by operation, backend, tier and outcome.
  Code below it adds what it learnt with `note(...)` (the tier that answered, events
  read, LRU state, ...).
- `operation_span(name, ...)`: a plain span, for one round trip to Redis or MySQL.
- `count(name, ...)`: add to a counter (`ifriend.lru.hits`, `ifriend.slack.deduplicated`).
- `turn(channel=..., user_id=...)`: the span of one chat turn, under which ADK's spans
  and the session spans nest; time to ack, time to first reply, total.

Privacy: no message text, state values, tokens or secrets go into attributes, and a
failure records only its exception type. User ids go through `user_id_attribute`
(hashed unless `[telemetry] capture_user_ids = true`).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

logger = logging.getLogger("ifriend.telemetry")
T = TypeVar("T")

tracer = trace.get_tracer("ifriend")
meter = metrics.get_meter("ifriend")

# -- names ---------------------------------------------------------------------------------

OPERATION_DURATION = "ifriend.operation.duration"
TURN_DURATION = "ifriend.turn.duration"
TURN_FIRST_REPLY = "ifriend.turn.time_to_first_reply"
LRU_HITS = "ifriend.lru.hits"
LRU_MISSES = "ifriend.lru.misses"
REHYDRATIONS = "ifriend.rehydrations"
REDIS_FALLBACKS = "ifriend.redis.fallbacks"
REDIS_OUTAGES = "ifriend.redis.outages"
STALE_WRITES = "ifriend.stale_writes"
SLACK_DEDUPLICATED = "ifriend.slack.deduplicated"
SLACK_DEDUPE_UNAVAILABLE = "ifriend.slack.dedupe_unavailable"
SPANS_DROPPED = "ifriend.telemetry.spans_dropped"

COUNTERS: dict[str, str] = {
    LRU_HITS: "Session reads the in-process LRU held (current or behind Redis)",
    LRU_MISSES: "Session reads the in-process LRU did not hold",
    REHYDRATIONS: "Sessions read from MySQL and copied back into Redis",
    REDIS_FALLBACKS: "Tiered operations that used MySQL alone because Redis was unreachable or untrusted",
    REDIS_OUTAGES: "Times a replica stopped every replica trusting Redis (it may lack acked writes)",
    STALE_WRITES: "Appends refused because the session changed since it was read",
    SLACK_DEDUPLICATED: "Slack events dropped as duplicates (retries, mention + message)",
    SLACK_DEDUPE_UNAVAILABLE: "Slack events handled without a dedupe claim: Redis was unreachable",
    SPANS_DROPPED: "Spans dropped because the export queue was full",
}

# Bucket bounds in seconds, from 50 µs (an LRU hit) to a minute (a slow model).
DURATION_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)
_duration = meter.create_histogram(
    OPERATION_DURATION,
    unit="s",
    description="Duration of session and memory operations",
    explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
)
_turn_duration = meter.create_histogram(
    TURN_DURATION,
    unit="s",
    description="Duration of chat turns, from receipt to the last reply",
    explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
)
_turn_first_reply = meter.create_histogram(
    TURN_FIRST_REPLY,
    unit="s",
    description="Time from a chat message's receipt to the first reply",
    explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
)
_counters: dict[str, Any] = {}

# -- attribute keys ------------------------------------------------------------------------

BACKEND = "ifriend.backend"
TIER = "ifriend.tier"
OUTCOME = "ifriend.outcome"
OPERATION = "ifriend.operation"
ERROR_TYPE = "error.type"


# -- counters ------------------------------------------------------------------------------


def count(
    name: str, value: int = 1, attributes: Mapping[str, Any] | None = None, **more: Any
) -> None:
    """Add `value` to the counter `name` (created on first use), with `attributes`.

    `count(SLACK_DEDUPLICATED, reason="retry")`; attribute values must be few
    (a reason, a tier), never ids or text.
    """
    counter = _counters.get(name)
    if counter is None:
        counter = _counters[name] = meter.create_counter(
            name, unit="1", description=COUNTERS.get(name, "")
        )
    counter.add(value, {**attributes, **more} if attributes else more)


# -- operations ----------------------------------------------------------------------------

_current: ContextVar[Operation | None] = ContextVar("ifriend_operation", default=None)


class Operation:
    """One session or memory operation in flight: its span and what the metric needs.

    Use as `with operation(...) as op:`; `op.set_attribute(...)` and `note(...)` add
    to the span; the tier and outcome also label the duration metric. Attributes added
    during the operation reach the span in one call when it ends (the SDK takes a lock
    and validates the value on every call, so one call costs much less than several).
    """

    __slots__ = ("name", "span", "attributes", "_added", "_start", "_token", "_context_token")

    def __init__(self, name: str, attributes: dict[str, Any]) -> None:
        self.name = name
        self.attributes = attributes
        self._added: dict[str, Any] = {}
        self.span: Span = trace.INVALID_SPAN

    def __enter__(self) -> Operation:
        self.span = span = tracer.start_span(
            self.name,
            attributes=self.attributes,
            record_exception=False,
            set_status_on_exception=False,
        )
        self._context_token = otel_context.attach(trace.set_span_in_context(span))
        self._token = _current.set(self)
        self._start = time.perf_counter()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        elapsed = time.perf_counter() - self._start
        _current.reset(self._token)
        otel_context.detach(self._context_token)
        attributes = self.attributes
        added = self._added
        span = self.span
        backend = attributes.get(BACKEND, "")
        labels = {OPERATION: self.name, BACKEND: backend, TIER: attributes.get(TIER) or backend}
        if exc_type is not None:
            error = exc_type.__qualname__
            added[ERROR_TYPE] = labels[ERROR_TYPE] = error
            added[OUTCOME] = labels[OUTCOME] = "error"
            span.set_status(Status(StatusCode.ERROR))
        else:
            labels[OUTCOME] = attributes.get(OUTCOME, "ok")
        if added:
            span.set_attributes(added)
        span.end()
        _duration.record(elapsed, labels)

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value
        self._added[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self.attributes.update(attributes)
        self._added.update(attributes)


def operation(name: str, *, backend: str, **attributes: Any) -> Operation:
    """A session or memory operation: span `name` plus one `ifriend.operation.duration` point.

    Attribute names with dots go in as `**{"ifriend.tier": "lru"}`.
    """
    attributes[BACKEND] = backend
    return Operation(name, attributes)


def note(attributes: Mapping[str, Any] | None = None, /, **more: Any) -> None:
    """Add attributes to the operation in flight (or, outside one, to the current span)."""
    values = {**attributes, **more} if attributes else more
    current = _current.get()
    if current is not None:
        current.set_attributes(values)
    else:
        trace.get_current_span().set_attributes(values)


def current_operation() -> Operation | None:
    """The operation in flight in this task, if any."""
    return _current.get()


class _PlainSpan:
    """The context manager `operation_span` returns (lighter than a generator-based one)."""

    __slots__ = ("name", "kind", "attributes", "span", "_context_token")

    def __init__(self, name: str, kind: SpanKind, attributes: dict[str, Any]) -> None:
        self.name, self.kind, self.attributes = name, kind, attributes

    def __enter__(self) -> Span:
        self.span = span = tracer.start_span(
            self.name,
            kind=self.kind,
            attributes=self.attributes,
            record_exception=False,
            set_status_on_exception=False,
        )
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

    For one round trip to a database: pass the semantic-convention attributes
    (`db.system`, `db.operation.name`, `server.address`, `server.port`) and
    `kind=SpanKind.CLIENT`, never a statement or its values.
    """
    return _PlainSpan(name, kind, attributes)


def db_attributes(
    system: str, *, address: str | None, port: int | None, namespace: str | None = None
) -> dict[str, Any]:
    """The connection-level database attributes (semantic conventions) of a client."""
    found: dict[str, Any] = {"db.system": system}
    if address:
        found["server.address"] = address
    if port:
        found["server.port"] = int(port)
    if namespace:
        found["db.namespace"] = namespace
    return found


def current_span() -> Span:
    """The span current in this task (a no-op span outside any)."""
    return trace.get_current_span()


def current_trace_id() -> str | None:
    """The current trace id as 32 hex digits (for log lines), or None outside a trace."""
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


# -- privacy -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Privacy:
    """What telemetry may hold about people. The defaults are the private ones."""

    capture_user_ids: bool = False
    capture_content: bool = False
    user_id_key: bytes = b""


_privacy = Privacy(user_id_key=secrets.token_bytes(32))


def privacy() -> Privacy:
    return _privacy


def set_privacy(new: Privacy) -> Privacy:
    """Make `new` the process's privacy rules; returns the previous ones (to restore)."""
    global _privacy
    previous, _privacy = _privacy, new
    return previous


def user_id_attribute(user_id: str) -> str:
    """`user_id` as it may appear in telemetry: keyed SHA-256, 16 hex digits, unless
    `capture_user_ids`. The key is `[telemetry] user_id_key` (the same on every replica
    of a deployment), else random per process."""
    rules = _privacy
    if rules.capture_user_ids:
        return user_id
    digest = hmac.new(rules.user_id_key, user_id.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return digest.hexdigest()[:16]


# -- chat turns ----------------------------------------------------------------------------

_turn: ContextVar[Turn | None] = ContextVar("ifriend_turn", default=None)


class Turn:
    """The `ifriend.turn` span of one chat turn; `acked()` and `replied()` mark its progress."""

    def __init__(self, channel: str, attributes: dict[str, Any], start: float | None) -> None:
        self.channel = channel
        self.attributes = attributes
        self.start = time.monotonic() if start is None else start
        self.span: Span = trace.INVALID_SPAN
        self.time_to_ack: float | None = None
        self.time_to_first_reply: float | None = None
        self.retries = 0
        self.outcome = "ok"

    def acked(self, at: float | None = None) -> None:
        """The channel acknowledged the message (e.g. answered Slack's HTTP request), now
        or at `time.monotonic()` value `at`."""
        if self.time_to_ack is None:
            at = time.monotonic() if at is None else at
            self.time_to_ack = max(0.0, at - self.start)
            self.span.set_attribute("ifriend.turn.time_to_ack_s", self.time_to_ack)
            self.span.add_event("ack", timestamp=time.time_ns() - int((time.monotonic() - at) * 1e9))

    def replied(self) -> None:
        """A reply (or the first part of one) was shown to the user."""
        if self.time_to_first_reply is None:
            self.time_to_first_reply = time.monotonic() - self.start
            self.span.set_attribute("ifriend.turn.time_to_first_reply_s", self.time_to_first_reply)
            self.span.add_event("first_reply")

    def retried(self) -> None:
        """The turn ran again (it lost a race with another writer)."""
        self.retries += 1
        self.span.set_attribute("ifriend.turn.retries", self.retries)

    def failed(self, exc: BaseException) -> None:
        """The turn failed with `exc` (handled by the channel): its type, never its message."""
        self.outcome = "error"
        self.span.set_attribute(ERROR_TYPE, type(exc).__qualname__)
        self.span.set_attribute(OUTCOME, "error")
        self.span.set_status(Status(StatusCode.ERROR))

    def set_attribute(self, key: str, value: Any) -> None:
        self.span.set_attribute(key, value)

    @property
    def trace_id(self) -> str | None:
        context = self.span.get_span_context()
        return format(context.trace_id, "032x") if context.is_valid else None


@contextmanager
def turn(
    channel: str,
    *,
    user_id: str | None = None,
    start: float | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Turn]:
    """The span of one chat turn, current while the turn runs.

    `start` is the `time.monotonic()` at which the message arrived, if earlier than
    now. Inside a turn already in flight (a channel's turn around
    `Conversations.turn`), this yields that turn and opens no new span. A failure is
    logged with the trace id and its exception type (never its message).
    """
    outer = _turn.get()
    if outer is not None:
        yield outer
        return
    attrs: dict[str, Any] = {"ifriend.channel": channel, **(attributes or {})}
    if user_id is not None:
        attrs["user.id"] = user_id_attribute(user_id)
    current = Turn(channel, attrs, start)
    start_ns = time.time_ns() - int((time.monotonic() - current.start) * 1e9)
    token = _turn.set(current)
    try:
        with tracer.start_as_current_span(
            "ifriend.turn",
            attributes=attrs,
            start_time=start_ns,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            current.span = span
            try:
                yield current
            except GeneratorExit:
                current.outcome = "closed"
                span.set_attribute(OUTCOME, "closed")
                raise
            except BaseException as exc:
                current.failed(exc)
                logger.error(
                    "%s turn failed: %s (trace_id=%s)",
                    channel,
                    type(exc).__qualname__,
                    current.trace_id or "-",
                )
                raise
            finally:
                total = time.monotonic() - current.start
                span.set_attribute("ifriend.turn.duration_s", total)
                labels = {"ifriend.channel": channel, OUTCOME: current.outcome}
                _turn_duration.record(total, labels)
                if current.time_to_first_reply is not None:
                    _turn_first_reply.record(current.time_to_first_reply, labels)
    finally:
        try:
            _turn.reset(token)
        except ValueError:  # closed from another context (an abandoned async generator)
            pass


def current_turn() -> Turn | None:
    """The chat turn in flight in this task, if any."""
    return _turn.get()


def turn_failed(exc: BaseException) -> None:
    """Mark the turn in flight failed by `exc`, which the channel handled (an apology was
    shown): its span records the error type, and the trace id is logged with it."""
    current = _turn.get()
    if current is None:
        return
    current.failed(exc)
    logger.error(
        "%s turn failed: %s (trace_id=%s)", current.channel, type(exc).__qualname__, current.trace_id or "-"
    )


def turn_retried() -> None:
    """Count a re-run of the turn in flight (it lost a race with another writer)."""
    current = _turn.get()
    if current is not None:
        current.retried()


def traced_turn(method: Callable[..., AsyncIterator[T]]) -> Callable[..., AsyncIterator[T]]:
    """Run an async-generator method that yields a turn's replies (given `user_id=`) in a
    `turn()`: the first item yielded marks the first reply."""

    @functools.wraps(method)
    async def traced(*args: Any, **kwargs: Any) -> AsyncIterator[T]:
        user_id = kwargs.get("user_id")
        with turn("direct", user_id=user_id if isinstance(user_id, str) else None) as current:
            replies = method(*args, **kwargs)
            try:
                async for item in replies:
                    current.replied()
                    yield item
            finally:
                await replies.aclose()

    return traced


__all__ = [
    "COUNTERS",
    "LRU_HITS",
    "LRU_MISSES",
    "OPERATION_DURATION",
    "REDIS_FALLBACKS",
    "REDIS_OUTAGES",
    "REHYDRATIONS",
    "SLACK_DEDUPLICATED",
    "SPANS_DROPPED",
    "STALE_WRITES",
    "SpanKind",
    "TURN_DURATION",
    "Operation",
    "Privacy",
    "Turn",
    "count",
    "current_operation",
    "current_span",
    "current_trace_id",
    "current_turn",
    "db_attributes",
    "meter",
    "note",
    "operation",
    "operation_span",
    "traced_turn",
    "turn_failed",
    "turn_retried",
    "privacy",
    "set_privacy",
    "tracer",
    "turn",
    "user_id_attribute",
]
