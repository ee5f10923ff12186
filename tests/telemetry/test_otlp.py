"""OTLP export to a local receiver (HTTP and gRPC), and a collector that never answers."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import textwrap
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace.export import SpanExporter

from ifriend.config import TelemetrySettings
from ifriend.sessions.service import SessionService
from ifriend.telemetry.recorder import Recorder
from ifriend.telemetry.setup import build_telemetry
from ifriend_inprocess import InProcessSessionStore

from .test_instrumentation import said


@dataclass
class Received:
    spans: list[dict] = field(default_factory=list)
    metrics: set[str] = field(default_factory=set)
    services: set[str] = field(default_factory=set)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def take_spans(self, message: ExportTraceServiceRequest) -> None:
        for resource_spans in message.resource_spans:
            for kv in resource_spans.resource.attributes:
                if kv.key == "service.name":
                    self.services.add(_value(kv.value))
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        {
                            "name": span.name,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_id": span.parent_span_id.hex() or None,
                            "scope": scope_spans.scope.name,
                            "attributes": {kv.key: _value(kv.value) for kv in span.attributes},
                        }
                    )
        self.arrived.set()

    def take_metrics(self, message: ExportMetricsServiceRequest) -> None:
        for resource_metrics in message.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                self.metrics.update(m.name for m in scope_metrics.metrics)


def _value(any_value) -> object:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


@asynccontextmanager
async def http_receiver() -> AsyncIterator[tuple[str, Received]]:
    """An OTLP/HTTP receiver on 127.0.0.1 that decodes the protobuf payloads."""
    got = Received()

    async def traces(request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        got.take_spans(ExportTraceServiceRequest.FromString(await request.read()))
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(), content_type="application/x-protobuf"
        )

    async def metrics(request: web.Request) -> web.Response:
        got.take_metrics(ExportMetricsServiceRequest.FromString(await request.read()))
        return web.Response(
            body=ExportMetricsServiceResponse().SerializeToString(), content_type="application/x-protobuf"
        )

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    app.router.add_post("/v1/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", got
    finally:
        await runner.cleanup()


@asynccontextmanager
async def grpc_receiver() -> AsyncIterator[tuple[str, Received]]:
    """An OTLP/gRPC collector on 127.0.0.1 (grpcio's asyncio server, the collector services)."""
    import grpc
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    got = Received()

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        async def Export(self, request, context):  # noqa: N802 - the service's name
            got.take_spans(request)
            return ExportTraceServiceResponse()

    class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
        async def Export(self, request, context):  # noqa: N802
            got.take_metrics(request)
            return ExportMetricsServiceResponse()

    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"http://127.0.0.1:{port}", got
    finally:
        await server.stop(grace=None)


@pytest.fixture(params=["http/protobuf", "grpc"])
async def receiver(request) -> AsyncIterator[tuple[str, str, Received]]:
    """(protocol, endpoint, what arrived) of an OTLP receiver of each protocol."""
    opened = grpc_receiver() if request.param == "grpc" else http_receiver()
    async with opened as (url, got):
        yield request.param, url, got


BOT = textwrap.dedent(
    """
    import asyncio, sys
    from ifriend import App, Settings

    async def main():
        settings = Settings.model_validate({"telemetry": {
            "exporter": "otlp", "endpoint": sys.argv[1], "protocol": sys.argv[2],
            "service_name": "ifriend-otlp-test"}})
        async with App(settings) as app:
            async for _ in app.conversations.turn(user_id="U1", session_id="s1", text="hello"):
                pass

    asyncio.run(main())
    """
)


async def test_spans_and_metrics_arrive_over_otlp_with_their_links(receiver):
    protocol, url, got = receiver
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", BOT, url, protocol, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()[-3000:]
    assert got.services == {"ifriend-otlp-test"}
    by_id = {s["span_id"]: s for s in got.spans}
    [turn] = [s for s in got.spans if s["name"] == "ifriend.turn"]
    assert turn["parent_id"] is None and turn["attributes"]["ifriend.channel"] == "direct"

    def ancestors(span):
        while span["parent_id"] in by_id:
            span = by_id[span["parent_id"]]
            yield span["name"]

    session = [s for s in got.spans if s["name"].startswith("ifriend.session.")]
    adk = [s for s in got.spans if s["scope"] == "gcp.vertex.agent"]
    assert {s["name"] for s in session} >= {"ifriend.session.get_session", "ifriend.session.append_event"}
    assert adk
    for span in session + adk:
        assert span["trace_id"] == turn["trace_id"]
        assert "ifriend.turn" in list(ancestors(span)), span["name"]
    assert any(by_id[s["parent_id"]]["scope"] == "gcp.vertex.agent"
               for s in session if s["name"] == "ifriend.session.append_event")
    assert turn["attributes"]["gen_ai.conversation.id"] == next(
        s["attributes"]["gen_ai.conversation.id"] for s in adk if s["name"].startswith("invoke_agent")
    ) != "s1"  # ADK's session id hashed as the turn's
    assert {"ifriend.operation.duration", "ifriend.turn.duration"} <= got.metrics


class Counting(SpanExporter):
    """Counts export calls that started and that returned."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner, self.started, self.finished, self.spans = inner, 0, 0, 0
        self.lock = threading.Lock()

    def export(self, spans):
        with self.lock:
            self.started += 1
            self.spans += len(spans)
        try:
            return self.inner.export(spans)
        finally:
            with self.lock:
                self.finished += 1

    def shutdown(self):
        self.inner.shutdown()


async def run_operations(service: SessionService, rounds: int) -> int:
    """`rounds` appends and reads; the number of operations done."""
    session = await service.create_session(app_name="a", user_id="u", session_id="s")
    for i in range(rounds):
        await service.append_event(session, said(f"m{i}"))
        await service.get_session(app_name="a", user_id="u", session_id="s")
    return 1 + 2 * rounds


async def test_an_unreachable_collector_never_holds_up_an_operation(caplog):
    """Counted, not timed: every operation completes while the one export to a collector
    that never answers is still in flight, as many as with telemetry off; the spans beyond
    the bounded queue are dropped, counted, and logged once."""
    caplog.set_level(logging.WARNING, logger="ifriend.telemetry")
    black_hole = socket.socket()  # accepts connections (backlog) and never answers
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(64)
    port = black_hole.getsockname()[1]
    env = {
        "OTEL_BSP_MAX_QUEUE_SIZE": "64",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "16",
        "OTEL_BSP_SCHEDULE_DELAY": "60000",  # export when 16 spans are waiting
    }
    rounds = 150
    off = build_telemetry(TelemetrySettings(exporter="none"), env=env)
    assert off is None
    done_off = await run_operations(SessionService(InProcessSessionStore(), backend="memory"), rounds)

    settings = TelemetrySettings(exporter="otlp", endpoint=f"http://127.0.0.1:{port}")
    built = build_telemetry(settings, env=env)
    counting = built.span_processor.exporter = Counting(built.span_processor.exporter)
    recorder = Recorder()
    recorder.start(built)
    try:
        done_on = await run_operations(SessionService(InProcessSessionStore(), backend="memory", telemetry=recorder), rounds)
        for _ in range(500):  # the worker thread may not have reached the exporter yet
            if counting.started:
                break
            await asyncio.sleep(0.01)
        in_flight = counting.started - counting.finished
        snapshot = (counting.started, counting.finished, counting.spans, len(built.span_processor._queue))
    finally:
        recorder.stop()
        black_hole.close()
        built.shutdown(0.5)
    started, finished, sent, queued = snapshot
    assert done_on == done_off == 1 + 2 * rounds
    assert (started, finished, in_flight) == (1, 0, 1)  # the first export still hangs
    # Every span is accounted for: in the hanging export, waiting in the queue, or dropped.
    assert sent == 16 and queued <= 64
    assert sent + queued + built.dropped_spans == done_on
    assert built.dropped_spans >= done_on - 80
    warnings = [r for r in caplog.records if "span export queue is full" in r.getMessage()]
    assert len(warnings) == 1


def test_while_the_collector_is_away_flush_and_shutdown_do_not_wait_for_it():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExportResult

    from ifriend.telemetry.processor import BoundedBatchSpanProcessor

    gate = threading.Event()

    class Away(SpanExporter):
        calls = 0

        def export(self, spans):
            Away.calls += 1
            if Away.calls > 1:
                gate.wait()  # this export hangs, as one to a black hole does
            return SpanExportResult.FAILURE

        def shutdown(self):
            pass

    processor = BoundedBatchSpanProcessor(Away(), schedule_delay_millis=60_000)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    try:
        tracer.start_span("first").end()
        assert processor.force_flush(10_000) is True  # the first export is waited for: it fails
        assert processor.healthy is False
        tracer.start_span("second").end()

        def flush_then_shutdown() -> None:
            assert processor.force_flush(600_000) is False  # started, not waited for
            processor.shutdown(600_000)  # half a second at most while the collector is away

        worker = threading.Thread(target=flush_then_shutdown)
        worker.start()
        worker.join(30)  # a liveness bound, far above the half second
        assert not worker.is_alive()
        assert Away.calls == 2
    finally:
        gate.set()
