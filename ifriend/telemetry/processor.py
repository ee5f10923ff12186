"""A batch span processor whose request path never waits, and an exporter that redacts.

`BoundedBatchSpanProcessor.on_end` appends the span to a bounded queue and returns;
a worker thread exports batches (and then runs `after_export`: deferred metric points). When the queue is full (the collector is slow or
unreachable) the new span is dropped, counted (`ifriend.telemetry.spans_dropped` and
`dropped`), and a warning is logged once. Flushing and shutting down are bounded by
their timeouts even if an export hangs.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status

from .privacy import conversation_id_attribute, user_id_attribute
from .recorder import SCOPE

logger = logging.getLogger("ifriend.telemetry")


class BoundedBatchSpanProcessor(SpanProcessor):
    """Batches ended spans to `exporter` from a worker thread; drops (and counts) on overflow."""

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int = 2048,
        max_export_batch_size: int = 512,
        schedule_delay_millis: float = 2000,
        on_drop: Callable[[int], None] | None = None,
        shutdown_timeout_millis: int = 5000,
        after_export: Callable[[], None] | None = None,
    ) -> None:
        if max_export_batch_size > max_queue_size:
            max_export_batch_size = max_queue_size
        self.exporter = exporter
        self.max_queue_size = max_queue_size
        self.max_export_batch_size = max_export_batch_size
        self.schedule_delay = schedule_delay_millis / 1000
        self.shutdown_timeout_millis = shutdown_timeout_millis
        self.dropped = 0
        self.exported = 0
        # None until the first export; False while the exporter fails (collector away).
        self.healthy: bool | None = None
        self._on_drop = on_drop
        self._after_export = after_export
        self._warned = False
        self._queue: collections.deque[ReadableSpan] = collections.deque()
        self._wake = threading.Event()
        self._flush_requests: list[threading.Event] = []
        self._lock = threading.Lock()
        self._shutdown = False
        self._worker = threading.Thread(
            target=self._run, name="ifriend-telemetry-export", daemon=True
        )
        self._worker.start()

    # -- request path ----------------------------------------------------------------------

    def on_start(self, span: object, parent_context: object = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self._shutdown or not span.context.trace_flags.sampled:
            return
        queue = self._queue
        if len(queue) >= self.max_queue_size:
            self._drop()
            return
        queue.append(span)
        if len(queue) >= self.max_export_batch_size and not self._wake.is_set():
            self._wake.set()

    def _drop(self) -> None:
        self.dropped += 1
        if self._on_drop is not None:
            self._on_drop(1)
        if not self._warned:
            self._warned = True
            logger.warning(
                "telemetry: the span export queue is full (%d spans; is the collector slow or "
                "unreachable?); new spans are dropped and counted in ifriend.telemetry.spans_dropped",
                self.max_queue_size,
            )

    # -- worker ----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self.schedule_delay)
            self._wake.clear()
            with self._lock:
                requests, self._flush_requests = self._flush_requests, []
            self._export_all()
            if self._after_export is not None:
                try:
                    self._after_export()
                except Exception:  # it must not kill the worker
                    logger.exception("telemetry: the work after an export failed")
            for done in requests:
                done.set()
            if self._shutdown:
                return

    def _export_all(self) -> None:
        queue = self._queue
        while queue:
            batch = [queue.popleft() for _ in range(min(len(queue), self.max_export_batch_size))]
            token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
            try:
                result = self.exporter.export(batch)
            except Exception:  # an exporter bug must not kill the worker
                logger.exception("telemetry: exporting %d spans failed", len(batch))
                self.healthy = False
            else:
                self.healthy = result is SpanExportResult.SUCCESS
                if self.healthy:
                    self.exported += len(batch)
            finally:
                detach(token)

    # -- flush and shutdown ----------------------------------------------------------------

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export what is queued; False if that took longer than `timeout_millis`.

        While the exporter fails (the collector is away), the export is started but not
        waited for: the caller would only wait for its timeout."""
        if self._shutdown or not self._worker.is_alive():
            return not self._queue
        done = threading.Event()
        with self._lock:
            self._flush_requests.append(done)
        self._wake.set()
        if self.healthy is False:
            return False
        return done.wait(timeout_millis / 1000)

    def shutdown(self, timeout_millis: int | None = None) -> None:
        """Export what is queued (within `timeout_millis`, default `shutdown_timeout_millis`),
        then stop the worker and the exporter. The SDK calls it at process exit."""
        if self._shutdown:
            return
        if timeout_millis is None:
            timeout_millis = self.shutdown_timeout_millis
        if self.healthy is False:
            timeout_millis = min(timeout_millis, 500)  # one last try, not a long wait
        deadline = time.monotonic() + timeout_millis / 1000
        self._shutdown = True
        self._wake.set()
        self._worker.join(max(0.0, deadline - time.monotonic()))
        if self._worker.is_alive():
            logger.warning(
                "telemetry: export did not finish within %.1fs at shutdown; %d spans not sent",
                timeout_millis / 1000,
                len(self._queue),
            )
        self.exporter.shutdown()


class SharedSpanProcessor(SpanProcessor):
    """A processor several Apps' providers share: their shutdown leaves it running (its
    owner, the routing provider, shuts it down)."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        self.inner.on_end(span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        pass


class RedactingSpanExporter(SpanExporter):
    """Passes spans on without what an exception's text may hold, and with other
    libraries' session and user ids hashed as ifriend's are.

    ifriend's own spans record only exception types; other libraries' spans may
    record an exception's message and traceback (`record_exception`) or a status
    description, which can quote user data. Those are dropped; the exception type stays.
    ADK records the session id in clear (`gen_ai.conversation.id`,
    `gcp.vertex.agent.session_id`): it becomes the hash ifriend's turn span carries.
    """

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([redact(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


_REDACTED_EVENT_KEYS = ("exception.message", "exception.stacktrace")
# Ids other libraries record in clear, and how ifriend hashes them.
_HASHED_IDS = {
    "gen_ai.conversation.id": conversation_id_attribute,
    "gcp.vertex.agent.session_id": conversation_id_attribute,
    "user.id": user_id_attribute,
}


def redact(span: ReadableSpan) -> ReadableSpan:
    """`span` without exception messages, tracebacks and status descriptions, and (unless
    it is ifriend's) with the ids of `_HASHED_IDS` hashed."""
    scope = span.instrumentation_scope
    attributes = span.attributes
    ids = (
        {}
        if scope is not None and scope.name == SCOPE
        else {k: hashed(str(attributes[k])) for k, hashed in _HASHED_IDS.items() if k in attributes}
    )
    ids = {k: v for k, v in ids.items() if v != attributes[k]}
    status = span.status
    risky_status = status is not None and status.description
    risky_events = any(
        key in (event.attributes or {}) for event in span.events for key in _REDACTED_EVENT_KEYS
    )
    if not risky_status and not risky_events and not ids:
        return span
    from opentelemetry.sdk.trace import Event

    events = [
        Event(
            event.name,
            {k: v for k, v in (event.attributes or {}).items() if k not in _REDACTED_EVENT_KEYS},
            event.timestamp,
        )
        for event in span.events
    ]
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes={**attributes, **ids} if ids else attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        instrumentation_scope=span.instrumentation_scope,
        status=Status(status.status_code) if risky_status else status,
        start_time=span.start_time,
        end_time=span.end_time,
    )
