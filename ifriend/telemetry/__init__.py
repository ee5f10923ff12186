"""Recording spans and metrics of every session, memory and chat operation.

Library code and plugins call these; each App records into its own OpenTelemetry SDK
(`[telemetry] exporter`), or, without one, into the API's global providers (a no-op
unless the host process set one up). `recorder` says which App a call records on.
Viewing what was recorded is `ifriend.traces`, which nothing here imports.

- `operation(name, backend=...)` (`operations`): a session or memory operation. A span
  named `name` (`ifriend.session.append_event`, `ifriend.memory.search_memory`) and one
  point of the `ifriend.operation.duration` histogram, by operation, backend, tier and
  outcome. Code below it adds what it learnt with `note(...)` (the tier that answered,
  events read, LRU state, ...).
- `operation_span(name, ...)`: a plain span, current inside `with`; a database round
  trip is a CLIENT one named by `db` (the database conventions).
- `count(name, ...)`: add to a counter; `counter(name, description)` declares one
  (`names`: ifriend's metric and attribute names).
- `turn(channel=..., user_id=...)` (`turns`): the span of one chat turn, under which
  ADK's spans and the session spans nest; time to ack, time to first reply, total.
- `tracer`, `meter` (`routing`): for a plugin's own spans and instruments (they follow
  the App).

Privacy (`privacy`): no message text, state values, tokens or secrets go into
attributes, and a failure records only its exception type. User and session ids go
through `user_id_attribute` / `conversation_id_attribute` (hashed unless `[telemetry]
capture_user_ids = true`).
"""

from __future__ import annotations

from opentelemetry.trace import SpanKind

from .db import batch_operation, db_attributes, span_name
from .names import (
    BACKEND,
    CALL,
    DB_BATCH_SIZE,
    DB_COLLECTION,
    DB_NAMESPACE,
    DB_OPERATION,
    DB_PROCEDURE,
    DB_SYSTEM,
    ERROR_TYPE,
    OPERATION,
    OPERATION_DURATION,
    OUTCOME,
    SERVER_ADDRESS,
    SERVER_PORT,
    SPANS_DROPPED,
    STALE_WRITES,
    TIER,
    TURN_DURATION,
    TURN_FIRST_REPLY,
    counter,
)
from .operations import (
    count,
    current_operation,
    current_span,
    current_trace_id,
    note,
    operation,
    operation_span,
)
from .privacy import Privacy, conversation_id_attribute, privacy, user_id_attribute
from .routing import meter, tracer
from .turns import Turn, current_turn, traced_turn, turn, turn_failed, turn_retried

__all__ = [
    # operations and spans
    "operation",
    "note",
    "current_operation",
    "operation_span",
    "SpanKind",
    "current_span",
    "current_trace_id",
    "tracer",
    "meter",
    # counters
    "count",
    "counter",
    # chat turns
    "turn",
    "traced_turn",
    "turn_failed",
    "turn_retried",
    "current_turn",
    "Turn",
    # privacy
    "privacy",
    "Privacy",
    "user_id_attribute",
    "conversation_id_attribute",
    # database client spans
    "db_attributes",
    "batch_operation",
    "span_name",
    # metric names
    "OPERATION_DURATION",
    "TURN_DURATION",
    "TURN_FIRST_REPLY",
    "STALE_WRITES",
    "SPANS_DROPPED",
    # attribute names
    "BACKEND",
    "TIER",
    "OUTCOME",
    "OPERATION",
    "CALL",
    "ERROR_TYPE",
    "DB_SYSTEM",
    "DB_OPERATION",
    "DB_NAMESPACE",
    "DB_COLLECTION",
    "DB_PROCEDURE",
    "DB_BATCH_SIZE",
    "SERVER_ADDRESS",
    "SERVER_PORT",
]
