"""Building the SDK from `[telemetry]`: exporters, the JSON-lines format, redaction,
sampling, the environment, and the once-per-process rule."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.trace import SpanKind, Status, StatusCode

from ifriend import App, Settings
from ifriend.config import TelemetrySettings
from ifriend.errors import ConfigError
from ifriend.telemetry.exporters import signal_url
from ifriend.telemetry.setup import build_telemetry


def jsonl(path: Path, **options) -> TelemetrySettings:
    return TelemetrySettings(exporter="jsonl", file=str(path), **options)


def lines_of(path: Path, kind: str = "span") -> list[dict]:
    if not path.exists():
        return []
    found = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [line for line in found if line["type"] == kind]


def test_none_and_otel_sdk_disabled_build_no_sdk(tmp_path):
    assert build_telemetry(TelemetrySettings(), env={}) is None
    assert build_telemetry(jsonl(tmp_path / "t.jsonl"), env={"OTEL_SDK_DISABLED": "true"}) is None


def test_the_jsonl_exporter_writes_one_span_per_line(tmp_path):
    path = tmp_path / "deep" / "t.jsonl"
    built = build_telemetry(jsonl(path, service_name="bot-7"), env={})
    try:
        tracer = built.tracer_provider.get_tracer("ifriend")
        with tracer.start_as_current_span("parent", attributes={"ifriend.tier": "lru"}) as parent:
            with tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
                child.add_event("ack", {"n": 1})
            parent.set_status(Status(StatusCode.ERROR))
        assert built.flush()
        spans = {line["name"]: line for line in lines_of(path)}
    finally:
        built.shutdown()
    assert set(spans) == {"parent", "child"}
    p, c = spans["parent"], spans["child"]
    assert c["parent_id"] == p["span_id"] and p["parent_id"] is None
    assert c["trace_id"] == p["trace_id"] and len(p["trace_id"]) == 32 and len(p["span_id"]) == 16
    assert p["start_ns"] <= c["start_ns"] <= c["end_ns"] <= p["end_ns"]
    assert p["attributes"] == {"ifriend.tier": "lru"} and p["status"] == "ERROR"
    assert c["kind"] == "CLIENT" and c["events"][0]["name"] == "ack" and c["events"][0]["attributes"] == {"n": 1}
    assert p["service"] == "bot-7" and p["scope"] == "ifriend"


def test_metrics_are_lines_of_the_same_file(tmp_path):
    path = tmp_path / "t.jsonl"
    built = build_telemetry(jsonl(path), env={})
    try:
        meter = built.meter_provider.get_meter("ifriend")
        meter.create_counter("ifriend.lru.hits").add(3, {"ifriend.lru": "current"})
        meter.create_histogram("ifriend.operation.duration", unit="s").record(0.002, {"ifriend.tier": "lru"})
        assert built.flush()
    finally:
        built.shutdown()
    metrics = {line["name"]: line for line in lines_of(path, "metric")}
    assert metrics["ifriend.lru.hits"]["points"] == [{"attributes": {"ifriend.lru": "current"}, "value": 3}]
    [point] = metrics["ifriend.operation.duration"]["points"]
    assert point["count"] == 1 and point["sum"] == pytest.approx(0.002)


@pytest.mark.parametrize("capture", [False, True])
def test_exception_text_is_kept_out_unless_content_is_captured(tmp_path, capture):
    path = tmp_path / "t.jsonl"
    built = build_telemetry(jsonl(path, capture_content=capture), env={})
    try:
        tracer = built.tracer_provider.get_tracer("some.library")
        with tracer.start_as_current_span("work") as span:
            try:
                raise ValueError("the user's private words")
            except ValueError as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, "the user's private words"))
        built.flush()
    finally:
        built.shutdown()
    text = path.read_text()
    assert ("private words" in text) is capture
    [span] = lines_of(path)
    assert span["events"][0]["attributes"]["exception.type"] == "ValueError"
    assert span["status"] == "ERROR"


def test_sample_ratio_zero_keeps_no_root_and_ratio_one_keeps_all(tmp_path):
    for ratio, expected in ((0.0, 0), (1.0, 20)):
        path = tmp_path / f"{ratio}.jsonl"
        built = build_telemetry(jsonl(path, sample_ratio=ratio), env={})
        try:
            tracer = built.tracer_provider.get_tracer("t")
            for _ in range(10):
                with tracer.start_as_current_span("root"), tracer.start_as_current_span("child"):
                    pass
            built.flush()
        finally:
            built.shutdown()
        assert len(lines_of(path)) == expected


def test_otel_service_name_beats_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    built = build_telemetry(jsonl(tmp_path / "t.jsonl", service_name="from-file"))
    try:
        assert built.tracer_provider.resource.attributes["service.name"] == "from-env"
    finally:
        built.shutdown()


def test_otlp_endpoints(monkeypatch):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert signal_url("http://127.0.0.1:4318", "traces") == "http://127.0.0.1:4318/v1/traces"
    assert signal_url("http://collector:4318/", "metrics") == "http://collector:4318/v1/metrics"
    assert signal_url("https://x.example/otlp/v1/traces", "traces") == "https://x.example/otlp/v1/traces"
    settings = TelemetrySettings(exporter="otlp", endpoint="http://file-host:4318")
    built = build_telemetry(settings)
    try:
        assert _inner(built)._endpoint == "http://file-host:4318/v1/traces"
    finally:
        built.shutdown(0.1)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env-host:4318")
    built = build_telemetry(settings)
    try:
        assert _inner(built)._endpoint == "http://env-host:4318/v1/traces"  # the environment wins
    finally:
        built.shutdown(0.1)


def test_otlp_protocol_from_the_environment_when_the_file_is_silent(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    settings = TelemetrySettings(exporter="otlp", endpoint="http://127.0.0.1:4317")
    built = build_telemetry(settings, protocol_from_file=False)
    try:
        assert "grpc" in type(_inner(built)).__module__
    finally:
        built.shutdown(0.1)
    built = build_telemetry(settings, protocol_from_file=True)  # the file said http/protobuf
    try:
        assert "http" in type(_inner(built)).__module__
    finally:
        built.shutdown(0.1)


def _inner(built):
    exporter = built.span_processor.exporter
    return getattr(exporter, "inner", exporter)


def test_otlp_without_its_extra_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(ConfigError, match=r"pip install 'ifriend\[otlp\]'"):
        build_telemetry(TelemetrySettings(exporter="otlp"), env={})


def test_extra_metric_readers_see_dropped_spans(tmp_path):
    reader = InMemoryMetricReader()
    built = build_telemetry(jsonl(tmp_path / "t.jsonl"), env={}, metric_readers=[reader])
    try:
        built.span_processor._drop()
        data = reader.get_metrics_data()
        names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
        assert "ifriend.telemetry.spans_dropped" in names
    finally:
        built.shutdown()


def span_lines(path: Path) -> list[dict]:
    return lines_of(path) if path.exists() else []


async def test_two_apps_in_one_process_each_export_their_own_spans(tmp_path, spans):
    """One after the other (a notebook, a reload) and with overlapping lives: each App's
    file holds its own App's spans, though the process has providers of its own."""
    def settings(name: str) -> Settings:
        return Settings.model_validate({"telemetry": {"exporter": "jsonl", "file": str(tmp_path / name)}})

    for name, session_id in (("first.jsonl", "one"), ("second.jsonl", "two")):
        async with App(settings(name)) as app:
            await app.session_service.create_session(app_name="a", user_id="u", session_id=session_id)
    async with App(settings("third.jsonl")) as third, App(settings("fourth.jsonl")) as fourth:
        await third.session_service.create_session(app_name="a", user_id="u", session_id="three")
        await fourth.session_service.create_session(app_name="a", user_id="u", session_id="four")
        await third.memory_service.search_memory(app_name="a", user_id="u", query="anything")
    files = {name: span_lines(tmp_path / f"{name}.jsonl") for name in ("first", "second", "third", "fourth")}
    names = {name: sorted(line["name"] for line in found) for name, found in files.items()}
    assert names["first"] == names["second"] == names["fourth"] == ["ifriend.session.create_session"]
    assert names["third"] == ["ifriend.memory.search_memory", "ifriend.session.create_session"]
    for found in files.values():  # exported through each App's own resource
        assert {line["service"] for line in found} == {"ifriend"}
    assert not spans.get_finished_spans()  # none went to the process's providers


async def test_an_app_without_an_exporter_records_into_the_process_providers(tmp_path, spans):
    async with App() as app:
        await app.session_service.create_session(app_name="a", user_id="u", session_id="s")
    assert [s.name for s in spans.get_finished_spans()] == ["ifriend.session.create_session"]


ONE_PROCESS = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from ifriend import App, Settings

    def settings(name):
        return Settings.model_validate({"telemetry": {"exporter": "jsonl", "file": name}})

    async def turn(app, session_id):
        async for _ in app.conversations.turn(user_id="u", session_id=session_id, text="hi"):
            pass

    async def main():
        async with App(settings("first.jsonl")) as first:
            await turn(first, "s1")
        async with App(settings("second.jsonl")) as second:
            await turn(second, "s2")
            async with App(settings("third.jsonl")) as third:  # lives overlap
                await turn(third, "s3")
                await turn(second, "s2")
        # Right after the Apps' exits, before the process ends: everything is exported.
        found = {}
        for name in ("first", "second", "third"):
            lines = [json.loads(l) for l in Path(f"{name}.jsonl").read_text().splitlines()]
            found[name] = [l for l in lines if l["type"] == "span"]
        print(json.dumps(found))

    asyncio.run(main())
    """
)


async def test_in_a_fresh_process_adk_spans_go_to_the_app_whose_turn_made_them(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ONE_PROCESS, cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()[-3000:]
    found = json.loads(out.decode().strip().splitlines()[-1])
    for name, turns in (("first", 1), ("second", 2), ("third", 1)):
        spans = found[name]
        roots = [s for s in spans if s["name"] == "ifriend.turn"]
        assert len(roots) == turns, name
        assert {s["trace_id"] for s in spans} == {r["trace_id"] for r in roots}  # nothing of another App
        adk = [s for s in spans if s["scope"] == "gcp.vertex.agent"]
        assert any(s["name"].startswith("invoke_agent") for s in adk), name
        by_id = {s["span_id"]: s for s in spans}
        for span in spans:  # every span hangs under its turn, in this App's file
            while span["parent_id"] is not None:
                span = by_id[span["parent_id"]]
            assert span["name"] == "ifriend.turn"


ADK_SERVER = textwrap.dedent(
    """
    import asyncio, json
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from ifriend import App, Settings

    settings = Settings.model_validate({"telemetry": {"exporter": "jsonl", "file": "t.jsonl"}})

    async def main():
        seen = InMemorySpanExporter()
        async with App(settings) as first:
            # As `adk web` does for its trace view, once ifriend set the global provider up:
            trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(seen))
            async for _ in first.conversations.turn(user_id="u", session_id="s1", text="hi"):
                pass
        async with App(settings) as second:  # an App started later: the processor sees it too
            async for _ in second.conversations.turn(user_id="u", session_id="s2", text="hi"):
                pass
        spans = seen.get_finished_spans()
        print(json.dumps({
            "turns": len({s.context.trace_id for s in spans if s.name == "ifriend.turn"}),
            "scopes": sorted({s.instrumentation_scope.name for s in spans}),
            "names": sorted({s.name.split()[0] for s in spans}),
        }))

    asyncio.run(main())
    """
)


async def test_a_processor_added_to_the_global_provider_sees_every_apps_spans(tmp_path):
    """ADK's server adds its processors to the global provider: they get ifriend's and ADK's
    spans of every exporting App, and outlive an App's exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ADK_SERVER, cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()[-3000:]
    found = json.loads(out.decode().strip().splitlines()[-1])
    assert found["turns"] == 2
    assert found["scopes"] == ["gcp.vertex.agent", "ifriend"]
    assert {"ifriend.turn", "ifriend.session.append_event", "invoke_agent"} <= set(found["names"])
