"""The span helper every session and memory operation uses.

Library code talks only to the OpenTelemetry API; without an SDK configured the
tracer is a no-op and costs next to nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

tracer = trace.get_tracer("ifriend")


@contextmanager
def operation_span(name: str, **attributes: Any) -> Iterator[Span]:
    """A span named `name` whose failures record only the error type, never its text."""
    with tracer.start_as_current_span(
        name, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as span:
        try:
            yield span
        except BaseException as exc:
            span.set_attribute("error.type", type(exc).__qualname__)
            span.set_status(Status(StatusCode.ERROR))
            raise
