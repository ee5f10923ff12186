"""The exporters of an App's SDK: JSON lines, the console, or OTLP (gRPC or HTTP).

An OTLP exporter waits at most `EXPORT_TIMEOUT_SECONDS` per export (unless
`OTEL_EXPORTER_OTLP_TIMEOUT` says otherwise), the environment's endpoints beat the
file's, and its loggers say each failure at most once a minute.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.trace.export import SpanExporter

from ..config import TelemetrySettings
from ..errors import ConfigError

logger = logging.getLogger("ifriend.telemetry")

OTLP_HINT = "pip install 'ifriend[otlp]'"
EXPORT_TIMEOUT_SECONDS = 5.0


def exporters(
    settings: TelemetrySettings, env: Mapping[str, str], protocol_from_file: bool
) -> tuple[SpanExporter, MetricReader, str]:
    """The span exporter, the metric reader and where they send (for the log), for `settings`."""
    interval = env_int(env, "OTEL_METRIC_EXPORT_INTERVAL", 60_000)
    if settings.exporter == "jsonl":
        from .jsonl import JsonLinesMetricExporter, JsonLinesSpanExporter, line_file

        shared = line_file(
            os.path.abspath(settings.file), max_bytes=settings.max_file_bytes, max_files=settings.max_files
        )
        spans = JsonLinesSpanExporter(shared.path, file=shared)
        reader = PeriodicExportingMetricReader(
            JsonLinesMetricExporter(shared.path, file=shared), export_interval_millis=interval
        )
        return spans, reader, f"jsonl file {shared.path}"
    if settings.exporter == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        reader = PeriodicExportingMetricReader(
            ConsoleMetricExporter(out=sys.stderr), export_interval_millis=interval
        )
        return ConsoleSpanExporter(out=sys.stderr), reader, "console (stderr)"
    return _otlp(settings, env, protocol_from_file, interval)


def _otlp(
    settings: TelemetrySettings, env: Mapping[str, str], protocol_from_file: bool, interval: int
) -> tuple[SpanExporter, MetricReader, str]:
    protocol = settings.protocol
    if not protocol_from_file:
        protocol = (
            env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or protocol
        ).strip()
    timeout = None if env.get("OTEL_EXPORTER_OTLP_TIMEOUT") else EXPORT_TIMEOUT_SECONDS
    # The environment beats the file: an OTEL_EXPORTER_OTLP_*ENDPOINT wins over `endpoint`.
    traces_env = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    metrics_env = env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    base = settings.endpoint
    try:
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            insecure = None if base is None else urlsplit(base).scheme == "http"
            spans = OTLPSpanExporter(
                endpoint=None if traces_env else base, insecure=insecure, timeout=timeout
            )
            values = OTLPMetricExporter(
                endpoint=None if metrics_env else base, insecure=insecure, timeout=timeout
            )
        elif protocol == "http/protobuf":
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            spans = OTLPSpanExporter(
                endpoint=None if traces_env or base is None else signal_url(base, "traces"),
                timeout=timeout,
            )
            values = OTLPMetricExporter(
                endpoint=None if metrics_env or base is None else signal_url(base, "metrics"),
                timeout=timeout,
            )
        else:
            raise ConfigError(
                "unknown OTLP protocol",
                key="telemetry.protocol",
                value=protocol,
                expected='"http/protobuf" or "grpc"',
            )
    except ImportError as exc:
        raise ConfigError(
            f"the otlp exporter needs the OpenTelemetry OTLP exporter: {OTLP_HINT} ({exc.name})",
            key="telemetry.exporter",
            value="otlp",
        ) from None
    _quiet(type(spans).__module__, type(values).__module__, "opentelemetry.exporter.otlp.proto.grpc.exporter")
    target = traces_env or base or "the OTLP default endpoint"
    reader = PeriodicExportingMetricReader(values, export_interval_millis=interval)
    return spans, reader, f"OTLP {protocol} to {target}"


class _OncePerMinute(logging.Filter):
    """Lets each kind of message of a logger through at most once a minute: an exporter
    whose collector is away logs every batch and every retry."""

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[object, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        key = record.msg
        if now - self._last.get(key, float("-inf")) < 60.0:
            return False
        self._last[key] = now
        return True


def _quiet(*logger_names: str) -> None:
    for name in logger_names:
        found = logging.getLogger(name)
        if not any(isinstance(f, _OncePerMinute) for f in found.filters):
            found.addFilter(_OncePerMinute())


def signal_url(base: str, signal: str) -> str:
    """`http://host:4318` -> `http://host:4318/v1/traces`; a URL with a path is kept as is."""
    parts = urlsplit(base)
    if parts.path.rstrip("/"):
        return base
    return f"{base.rstrip('/')}/v1/{signal}"


def env_int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        return max(1, int(value))
    except ValueError:
        logger.warning("telemetry: %s=%r is not a whole number; using %d", name, value, default)
        return default
