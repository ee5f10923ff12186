"""The OpenTelemetry SDK, set up from `[telemetry]`, once per process.

`start_telemetry(settings)` is what the App calls on enter; the returned lease's
`release()` on exit flushes what is queued. The rules:

- `exporter = "none"` (the default) sets up no SDK: spans and metrics go to the
  OpenTelemetry API's no-op implementation (unless the host process set up its own).
- OpenTelemetry's global providers can be set only once per process. The first App
  that starts with an exporter installs them; a later App in the same process shares
  them (its own `[telemetry]` is not applied, which is logged at debug). If the host
  process (or a test suite) set its own providers first, ifriend keeps them and adds
  nothing.
- The providers shut down when the process exits (OpenTelemetry's own atexit hooks);
  an App's exit only flushes, bounded by `FLUSH_SECONDS`, so an unreachable collector
  never holds up a shutdown for long.
- Privacy rules (hashing user ids, ADK's content capture) apply from the App's start
  to its exit, whatever the exporter.

The standard variables work: `OTEL_SDK_DISABLED=true` turns the SDK off,
`OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` name the service,
`OTEL_EXPORTER_OTLP_[TRACES_|METRICS_]ENDPOINT`, `_HEADERS`, `_TIMEOUT`, `_PROTOCOL`, ...
configure OTLP (the environment beats the file), `OTEL_BSP_*` size the span queue and
`OTEL_METRIC_EXPORT_INTERVAL` sets how often metrics are sent.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import logging
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, Sampler, TraceIdRatioBased

from ..config import Settings, TelemetrySettings
from ..errors import ConfigError
from . import SPANS_DROPPED, Privacy, privacy, set_privacy
from .processor import BoundedBatchSpanProcessor, RedactingSpanExporter

logger = logging.getLogger("ifriend.telemetry")

OTLP_HINT = "pip install 'ifriend[otlp]'"
FLUSH_SECONDS = 5.0
EXPORT_TIMEOUT_SECONDS = 5.0
SHUTDOWN_MILLIS = 5000
_TRUE = {"1", "true", "yes", "on"}

# ADK's switches for message content in its spans and log events (google/adk/telemetry/
# context.py): the legacy spans' knob defaults on, so it is set either way.
ADK_CONTENT_SWITCHES = {
    "ADK_CAPTURE_MESSAGE_CONTENT_IN_SPANS": ("false", "true"),
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": ("NO_CONTENT", "SPAN_ONLY"),
}
# ADK's loggers write whole model requests and responses at DEBUG (google_llm, lite_llm,
# anthropic_llm, ...): without capture_content they stay at INFO or above.
ADK_LOGGER = "google_adk"


# -- the SDK objects -----------------------------------------------------------------------


@dataclass
class Telemetry:
    """A tracer provider and a meter provider built from `[telemetry]` (not yet global)."""

    settings: TelemetrySettings
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    span_processor: BoundedBatchSpanProcessor
    description: str

    _closed: bool = False

    @property
    def collector_away(self) -> bool:
        """The last span export failed (metrics go to the same place)."""
        return self.span_processor.healthy is False

    def flush(self, timeout: float = FLUSH_SECONDS) -> bool:
        """Export what is queued (spans, then current metric values); False on timeout.
        While the collector is away, the spans' export is started but not waited for."""
        millis = int(timeout * 1000)
        spans = self.tracer_provider.force_flush(millis)
        if self.collector_away:
            return False
        try:
            values = self.meter_provider.force_flush(millis)
        except Exception:  # a metric exporter's failure is logged by the SDK
            values = False
        return bool(spans and values)

    def shutdown(self, timeout: float = SHUTDOWN_MILLIS / 1000) -> None:
        """Export what is left and stop; bounded by `timeout` (half a second while the
        collector is away). Called at process exit for the installed telemetry."""
        if self._closed:
            return
        self._closed = True
        if self.collector_away:
            timeout = min(timeout, 0.5)
        self.span_processor.shutdown(int(timeout * 1000))
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown(timeout_millis=timeout * 1000)

    @property
    def dropped_spans(self) -> int:
        return self.span_processor.dropped


def build_telemetry(
    settings: TelemetrySettings,
    *,
    env: Mapping[str, str] | None = None,
    protocol_from_file: bool = True,
    metric_readers: Sequence[MetricReader] = (),
) -> Telemetry | None:
    """The SDK objects for `settings`, or None for `exporter = "none"` / `OTEL_SDK_DISABLED`.

    Nothing is made global. `protocol_from_file=False` lets `OTEL_EXPORTER_OTLP_PROTOCOL`
    choose the OTLP protocol (the file did not set one). `metric_readers` are added to
    the exporter's (tests read metrics with them).
    """
    env = os.environ if env is None else env
    if settings.exporter == "none" or env.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return None
    resource = _resource(settings, env)
    span_exporter, metric_reader, description = _exporters(settings, env, protocol_from_file)
    if not settings.capture_content:
        span_exporter = RedactingSpanExporter(span_exporter)
    # Shut down by `install` at process exit (bounded), not by the SDK's own atexit hooks.
    meter_provider = MeterProvider(
        resource=resource, metric_readers=[metric_reader, *metric_readers], shutdown_on_exit=False
    )
    dropped = meter_provider.get_meter("ifriend.telemetry").create_counter(
        SPANS_DROPPED, unit="1", description="Spans dropped because the export queue was full"
    )
    processor = BoundedBatchSpanProcessor(
        span_exporter,
        max_queue_size=_env_int(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048),
        max_export_batch_size=_env_int(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512),
        schedule_delay_millis=_env_int(env, "OTEL_BSP_SCHEDULE_DELAY", 2000),
        on_drop=dropped.add,
        shutdown_timeout_millis=SHUTDOWN_MILLIS,
    )
    tracer_provider = TracerProvider(
        sampler=sampler(settings.sample_ratio), resource=resource, shutdown_on_exit=False
    )
    tracer_provider.add_span_processor(processor)
    return Telemetry(settings, tracer_provider, meter_provider, processor, description)


def sampler(ratio: float) -> Sampler:
    """Children follow their parent; roots are kept with probability `ratio`."""
    return ParentBased(ALWAYS_ON if ratio >= 1.0 else TraceIdRatioBased(ratio))


def _resource(settings: TelemetrySettings, env: Mapping[str, str]) -> Resource:
    from .. import __version__

    attributes: dict[str, Any] = {"service.version": __version__}
    if not env.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = settings.service_name
    return Resource.create(attributes)


def _exporters(
    settings: TelemetrySettings, env: Mapping[str, str], protocol_from_file: bool
) -> tuple[SpanExporter, MetricReader, str]:
    interval = _env_int(env, "OTEL_METRIC_EXPORT_INTERVAL", 60_000)
    if settings.exporter == "jsonl":
        from .jsonl import JsonLinesMetricExporter, JsonLinesSpanExporter, line_file

        shared = line_file(os.path.abspath(settings.file))
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


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        return max(1, int(value))
    except ValueError:
        logger.warning("telemetry: %s=%r is not a whole number; using %d", name, value, default)
        return default


# -- once per process ----------------------------------------------------------------------

_lock = threading.RLock()
_installed: Telemetry | None = None


def installed() -> Telemetry | None:
    """The telemetry an App installed in this process, if any."""
    return _installed


def _provider_is_set() -> bool:
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def _meter_provider_is_set() -> bool:
    from opentelemetry.metrics._internal import _ProxyMeterProvider

    return not isinstance(metrics.get_meter_provider(), _ProxyMeterProvider)


def install(telemetry: Telemetry) -> bool:
    """Make `telemetry` the process's global providers; False (and nothing done) if the
    process already has a tracer provider."""
    global _installed
    with _lock:
        if _installed is not None or _provider_is_set():
            return False
        trace.set_tracer_provider(telemetry.tracer_provider)
        if not _meter_provider_is_set():
            metrics.set_meter_provider(telemetry.meter_provider)
        _installed = telemetry
        atexit.register(telemetry.shutdown)
        return True


@dataclass
class TelemetryLease:
    """What one App holds from `start_telemetry`; `release()` on the App's exit."""

    settings: TelemetrySettings
    telemetry: Telemetry | None = None
    _released: bool = False

    async def release(self) -> None:
        """Flush the telemetry (bounded by `FLUSH_SECONDS`); the privacy rules go back to
        those of the App still running (the latest started), or to what they were."""
        if self._released:
            return
        self._released = True
        try:
            if self.telemetry is not None:
                await flush_in_background(self.telemetry, FLUSH_SECONDS)
        finally:
            with _lock:
                _leases.remove(self)
                _apply_rules(_leases[-1].settings if _leases else None)


# The Apps running in this process, oldest first; the latest one's privacy rules apply.
_leases: list[TelemetryLease] = []
# What the rules changed, as it was before the first App started.
_before: dict[str, Any] = {}


def start_telemetry(settings: Settings) -> TelemetryLease:
    """Apply `[telemetry]` for an App: privacy rules, ADK's content switch, and the SDK
    (installed if this is the first App with an exporter and the process has none)."""
    lease = TelemetryLease(settings.telemetry)
    with _lock:
        _leases.append(lease)
        _apply_rules(settings.telemetry)
    try:
        lease.telemetry = _shared_telemetry(settings)
    except BaseException:
        with _lock:
            _leases.remove(lease)
            _apply_rules(_leases[-1].settings if _leases else None)
        raise
    return lease


def _apply_rules(t: TelemetrySettings | None) -> None:
    """Make `t`'s privacy rules the process's (None: restore what was there before)."""
    adk_logger = logging.getLogger(ADK_LOGGER)
    if not _before:
        if t is None:
            return
        _before.update(
            privacy=privacy(),
            env={name: os.environ.get(name) for name in ADK_CONTENT_SWITCHES},
            adk_level=adk_logger.level,
        )
    if t is None:
        set_privacy(_before["privacy"])
        _restore_env(_before["env"])
        adk_logger.setLevel(_before["adk_level"])
        _before.clear()
        return
    set_privacy(
        Privacy(
            capture_user_ids=t.capture_user_ids,
            capture_content=t.capture_content,
            user_id_key=_user_id_key(t, _before["privacy"].user_id_key),
        )
    )
    for name, (off, on) in ADK_CONTENT_SWITCHES.items():
        os.environ[name] = on if t.capture_content else off
    adk_logger.setLevel(_before["adk_level"])
    if not t.capture_content and adk_logger.getEffectiveLevel() < logging.INFO:
        adk_logger.setLevel(logging.INFO)


def _restore_env(previous: dict[str, str | None]) -> None:
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _shared_telemetry(settings: Settings) -> Telemetry | None:
    t = settings.telemetry
    if t.exporter == "none":
        return None
    if _installed is not None:
        if _installed.settings != t:
            logger.debug(
                "telemetry: already set up in this process by the first App (%s); "
                "this App's [telemetry] is not applied",
                _installed.description,
            )
        return _installed
    if _provider_is_set():
        logger.debug(
            "telemetry: this process already has an OpenTelemetry tracer provider; "
            "keeping it ([telemetry] exporter = %r not applied)",
            t.exporter,
        )
        return None
    built = build_telemetry(
        t, protocol_from_file=settings.origin("telemetry", "protocol") != "default"
    )
    if built is None:
        return None
    if not install(built):  # lost a race with another thread
        built.shutdown(0.1)
        return _installed
    logger.info("telemetry: exporting spans and metrics to %s", built.description)
    return built


def _user_id_key(settings: TelemetrySettings, current: bytes) -> bytes:
    secret = settings.user_id_secret
    if secret is None or not secret.get_secret_value():
        return current
    return hashlib.sha256(b"ifriend user ids\0" + secret.get_secret_value().encode()).digest()


async def flush_in_background(telemetry: Telemetry, timeout: float) -> bool:
    """`telemetry.flush()` on a daemon thread, waited for at most `timeout` seconds.

    The event loop keeps running meanwhile, and a hung export cannot hold up the exit.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bool] = loop.create_future()

    def work() -> None:
        try:
            result = telemetry.flush(timeout)
        except Exception:
            logger.exception("telemetry: flush failed")
            result = False
        if not loop.is_closed():
            loop.call_soon_threadsafe(lambda: done.done() or done.set_result(result))

    threading.Thread(target=work, name="ifriend-telemetry-flush", daemon=True).start()
    try:
        return await asyncio.wait_for(asyncio.shield(done), timeout + 0.5)
    except TimeoutError:
        logger.warning("telemetry: flush did not finish within %.1fs", timeout)
        return False
