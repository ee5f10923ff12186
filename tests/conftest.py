"""Shared fixtures: captured spans, servers, and the rule that CI never skips a server test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from .servers import PrivateRedis

_EXPORTER = InMemorySpanExporter()


def pytest_configure(config: pytest.Config) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    trace.set_tracer_provider(provider)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans finished during the test (the exporter is emptied before it)."""
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def last_span(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = [s for s in exporter.get_finished_spans() if s.name == name]
    assert found, f"no span named {name}"
    return found[-1]


def server_url(variable: str) -> str:
    """The URL of a shared test server; skipped locally if unset, a failure under CI."""
    url = os.environ.get(variable)
    if url:
        return url
    reason = f"{variable} is not set (`make test` starts the servers and sets it)"
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{reason}; CI is set, so a missing server is a failure", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    """A redis-server of this test alone, which it may stop, pause and restart."""
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
