"""Building the SDK from `[telemetry]`: exporters, the JSON-lines format, redaction,
sampling, the environment, and the once-per-process rule."""

from __future__ import annotations

import asyncio
import json
import logging
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
from ifriend.telemetry.setup import build_telemetry, signal_url


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


async def test_an_app_keeps_a_provider_the_process_already_has(tmp_path, caplog, spans):
    caplog.set_level(logging.DEBUG, logger="ifriend.telemetry")
    path = tmp_path / "t.jsonl"
    settings = Settings.model_validate({"telemetry": {"exporter": "jsonl", "file": str(path)}})
    async with App(settings) as app:
        await app.session_service.create_session(app_name="a", user_id="u", session_id="s")
    assert not path.exists()
    assert spans.get_finished_spans()  # the test suite's provider got them
    assert any("already has an OpenTelemetry tracer provider" in r.getMessage() for r in caplog.records)


FIRST_APP_WINS = textwrap.dedent(
    """
    import asyncio, json, logging, sys
    from pathlib import Path
    from ifriend import App, Settings

    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)

    def settings(name):
        return Settings.model_validate(
            {"telemetry": {"exporter": "jsonl", "file": name}, "session": {"backend": "memory"}}
        )

    async def main():
        async with App(settings("first.jsonl")) as first:
            async with App(settings("second.jsonl")) as second:
                for app, sid in ((first, "a"), (second, "b")):
                    await app.session_service.create_session(app_name="x", user_id="u", session_id=sid)
            await first.session_service.get_session(app_name="x", user_id="u", session_id="a")
        # Right after the App's exit, before the process ends: everything is flushed.
        lines = Path("first.jsonl").read_text().splitlines()
        print(json.dumps({"lines": len([l for l in lines if '"type":"span"' in l]),
                          "second": Path("second.jsonl").exists()}))

    asyncio.run(main())
    """
)


async def test_in_a_fresh_process_the_first_app_wins_and_flushes_on_exit(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FIRST_APP_WINS, cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()[-3000:]
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result == {"lines": 3, "second": False}
    assert "this App's [telemetry] is not applied" in err.decode()
