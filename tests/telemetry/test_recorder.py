"""An App's own SDK: ifriend's spans without the SDK's per-span bookkeeping, sampled as the
SDK samples, counters and histogram points that reach every reader, ids hashed in ADK's spans."""

from __future__ import annotations

import random

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind

from ifriend import telemetry
from ifriend.config import TelemetrySettings
from ifriend.telemetry import conversation_id_attribute
from ifriend.telemetry.recorder import Recorder
from ifriend.telemetry.setup import build_telemetry
from ifriend.telemetry.spans import LiteSpan
from ifriend_slack.dedupe import SLACK_DEDUPLICATED
from ifriend_tiered.metrics import LRU_HITS

from .test_setup import lines_of


@pytest.fixture
def own(tmp_path):
    """A recorder started on an SDK of its own (a JSON-lines file), with an extra metric reader."""
    reader = InMemoryMetricReader()
    built = build_telemetry(
        TelemetrySettings(exporter="jsonl", file=str(tmp_path / "t.jsonl")), env={}, metric_readers=[reader]
    )
    recorder = Recorder()
    recorder.start(built)
    recorder.reader = reader
    recorder.path = tmp_path / "t.jsonl"
    try:
        yield recorder
    finally:
        recorder.stop()
        built.shutdown()


def test_an_operation_is_one_span_whose_attributes_are_set_once(own):
    with own.operation("ifriend.session.get_session", backend="tiered") as op:
        assert isinstance(op.span, LiteSpan)
        with telemetry.operation_span("EVALSHA probe", kind=SpanKind.CLIENT, **{"db.system.name": "redis"}):
            telemetry.count(LRU_HITS)
        telemetry.note({"ifriend.tier": "lru", "ifriend.events_read": 0})
    with pytest.raises(KeyError), own.operation("ifriend.session.append_event", backend="tiered"):
        raise KeyError("private words")
    assert own.telemetry.flush()
    spans = {line["name"]: line for line in lines_of(own.path)}
    get, probe, failed = (spans[n] for n in ("ifriend.session.get_session", "EVALSHA probe", "ifriend.session.append_event"))
    assert get["attributes"] == {"ifriend.backend": "tiered", "ifriend.tier": "lru", "ifriend.events_read": 0}
    assert probe["parent_id"] == get["span_id"] and probe["kind"] == "CLIENT" and probe["scope"] == "ifriend"
    assert failed["status"] == "ERROR" and failed["attributes"]["error.type"] == "KeyError"
    assert failed["attributes"]["ifriend.tier"] == "tiered"  # no tier noted: the backend's
    assert "private" not in own.path.read_text()
    data = own.reader.get_metrics_data()  # a reader of its own sees the deferred points too
    metrics = {m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    durations = {
        (p.attributes["ifriend.operation"], p.attributes["ifriend.outcome"]): p.count
        for p in metrics[telemetry.OPERATION_DURATION].data.data_points
    }
    assert durations == {("ifriend.session.get_session", "ok"): 1, ("ifriend.session.append_event", "error"): 1}
    [hits] = metrics[LRU_HITS].data.data_points
    assert hits.value == 1
    assert "ifriend.telemetry.deferred_points" not in metrics  # the hook reports nothing


def test_the_exported_file_holds_the_metrics_too(own):
    with own.operation("ifriend.session.get_session", backend="memory"):
        pass
    own.count(SLACK_DEDUPLICATED, 2, {"reason": "retry"})
    assert own.telemetry.flush()
    metrics = {line["name"]: line for line in lines_of(own.path, "metric")}
    [point] = metrics[telemetry.OPERATION_DURATION]["points"]
    assert point["count"] == 1 and point["attributes"]["ifriend.tier"] == "memory"
    assert metrics[SLACK_DEDUPLICATED]["points"] == [{"attributes": {"reason": "retry"}, "value": 2}]


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.5, 1.0])
def test_roots_are_sampled_as_the_sdk_samples_them_and_children_follow(tmp_path, ratio):
    built = build_telemetry(
        TelemetrySettings(exporter="jsonl", file=str(tmp_path / "t.jsonl"), sample_ratio=ratio), env={}
    )
    sdk = ParentBased(TraceIdRatioBased(ratio))
    try:
        sink = built.sink
        random.seed(7)
        kept = 0
        for _ in range(400):
            root = sink.start("root", trace.INVALID_SPAN_CONTEXT, SpanKind.INTERNAL, {}, 1)
            context = root.get_span_context()
            decision = sdk.should_sample(None, context.trace_id, "root").decision.is_sampled()
            assert root.is_recording() is decision is context.trace_flags.sampled
            child = sink.start("child", context, SpanKind.CLIENT, {}, 2)
            assert child.get_span_context().trace_id == context.trace_id
            assert child.is_recording() is decision  # never a new root of its own
            kept += decision
        assert kept == {0.0: 0, 1.0: 400}.get(ratio, kept)
        assert 0 < kept < 400 or ratio in (0.0, 1.0)
    finally:
        built.shutdown()


def test_adk_session_ids_are_hashed_as_the_turn_hashes_them(tmp_path):
    built = build_telemetry(TelemetrySettings(exporter="jsonl", file=str(tmp_path / "t.jsonl")), env={})
    try:
        adk = built.tracer_provider.get_tracer("gcp.vertex.agent")
        attributes = {"gen_ai.conversation.id": "thread-42", "gcp.vertex.agent.session_id": "thread-42"}
        adk.start_span("invoke_agent assistant", attributes=attributes).end()
        built.flush()
    finally:
        built.shutdown()
    [span] = lines_of(tmp_path / "t.jsonl")
    hashed = conversation_id_attribute("thread-42")
    assert span["attributes"] == {"gen_ai.conversation.id": hashed, "gcp.vertex.agent.session_id": hashed}
    assert "thread-42" not in (tmp_path / "t.jsonl").read_text()


def test_plugins_tracer_and_meter_follow_the_recorder_in_flight(own, spans, metric_points):
    counter = telemetry.meter.create_counter("ifriend.test.clicks")
    with own.operation("ifriend.session.get_session", backend="memory"):
        telemetry.tracer.start_span("mine").end()
        counter.add(1)
    telemetry.tracer.start_span("ambient").end()  # outside an operation: the App running
    built = own.telemetry
    own.stop()
    telemetry.tracer.start_span("outside").end()  # no App running: the process's providers
    counter.add(5)
    assert built.flush()
    assert {line["name"] for line in lines_of(own.path)} == {"ifriend.session.get_session", "mine", "ambient"}
    assert [s.name for s in spans.get_finished_spans()] == ["outside"]
    metrics = {line["name"]: line for line in lines_of(own.path, "metric")}
    assert metrics["ifriend.test.clicks"]["points"][0]["value"] == 1
    assert metric_points.total("ifriend.test.clicks") == 5
