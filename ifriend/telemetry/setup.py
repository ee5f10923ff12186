"""The OpenTelemetry SDK of each App, built from its `[telemetry]`.

`start_telemetry(settings, recorder)` is what the App calls on enter; the returned
lease's `release()` on exit exports what is queued and shuts the App's SDK down. The rules:

- `exporter = "none"` (the default) builds no SDK: the App's spans and metrics go to
  the OpenTelemetry API's global providers (a no-op, unless the host process set its own).
- Any other exporter gives the App providers of its own, never made global: two Apps in
  one process (tests, notebooks, a reload) each export to their own place, whoever set
  the process's global providers.
- Other libraries (ADK) record on the global providers. If the process has none, the
  first App that exports installs routing ones (`routing`): their spans then go to the
  App whose turn made them, sampled, batched and redacted as its own. If the host set
  its own global providers first, ADK's spans go there, and they share trace ids with
  ifriend's (the context carries them), so a backend receiving both joins them.
- An App's exit exports what is queued, bounded by `FLUSH_SECONDS`, so an unreachable
  collector never holds up a shutdown for long.
- Privacy rules (hashing ids, ADK's content capture) are the process's: the latest
  running App's, from its start to its exit, whatever the exporter.

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
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, Sampler, TraceIdRatioBased

from ..config import Settings, TelemetrySettings
from .deferred import DeferredPoints
from .exporters import env_int, exporters
from .names import SPANS_DROPPED
from .privacy import Privacy, privacy, set_privacy
from .processor import BoundedBatchSpanProcessor, RedactingSpanExporter
from .recorder import SCOPE, Recorder
from .routing import RoutingTracerProvider
from .spans import SpanSink

logger = logging.getLogger("ifriend.telemetry")

FLUSH_SECONDS = 5.0
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
    """One App's SDK, built from `[telemetry]`: providers (never made global), the span
    processor, the sink of ifriend's own spans (`spans.SpanSink`) and its deferred
    histogram points (`deferred.DeferredPoints`)."""

    settings: TelemetrySettings
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    span_processor: BoundedBatchSpanProcessor
    sink: SpanSink
    deferred: DeferredPoints
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
        collector is away). The App's exit calls it (and the process's exit, for an App
        never exited)."""
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

    def add_span_processor(self, processor: SpanProcessor) -> None:
        """Hand every span of this App, its own and ADK's, to `processor` too."""
        self.tracer_provider.add_span_processor(processor)
        self.sink.add(processor)


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
    span_exporter, metric_reader, description = exporters(settings, env, protocol_from_file)
    if not settings.capture_content:
        span_exporter = RedactingSpanExporter(span_exporter)
    # Shut down by the App's exit (bounded), not by the SDK's own atexit hooks.
    meter_provider = MeterProvider(
        resource=resource, metric_readers=[metric_reader, *metric_readers], shutdown_on_exit=False
    )
    own_meter = meter_provider.get_meter("ifriend.telemetry")
    dropped = own_meter.create_counter(
        SPANS_DROPPED, unit="1", description="Spans dropped because the export queue was full"
    )
    deferred = DeferredPoints(own_meter)
    processor = BoundedBatchSpanProcessor(
        span_exporter,
        max_queue_size=env_int(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048),
        max_export_batch_size=env_int(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512),
        schedule_delay_millis=env_int(env, "OTEL_BSP_SCHEDULE_DELAY", 2000),
        on_drop=dropped.add,
        shutdown_timeout_millis=SHUTDOWN_MILLIS,
        after_export=deferred.drain,
    )
    tracer_provider = TracerProvider(
        sampler=sampler(settings.sample_ratio), resource=resource, shutdown_on_exit=False
    )
    tracer_provider.add_span_processor(processor)
    sink = SpanSink(processor, resource, SCOPE, settings.sample_ratio)
    return Telemetry(settings, tracer_provider, meter_provider, processor, sink, deferred, description)


def sampler(ratio: float) -> Sampler:
    """Children follow their parent; roots are kept with probability `ratio`."""
    return ParentBased(ALWAYS_ON if ratio >= 1.0 else TraceIdRatioBased(ratio))


def _resource(settings: TelemetrySettings, env: Mapping[str, str]) -> Resource:
    from .. import __version__

    attributes: dict[str, Any] = {"service.version": __version__}
    if not env.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = settings.service_name
    return Resource.create(attributes)


# -- one SDK per App -----------------------------------------------------------------------

_lock = threading.RLock()
_routing: RoutingTracerProvider | None = None


def _install_routing() -> RoutingTracerProvider | None:
    """Make the routing providers the process's global ones, unless it has its own: other
    libraries' spans and metrics (ADK's) then follow the App in flight. Once per process."""
    global _routing
    with _lock:
        if _routing is not None:
            return _routing
        if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            return None
        from opentelemetry.metrics._internal import _ProxyMeterProvider

        from .routing import RoutingMeterProvider

        _routing = RoutingTracerProvider()
        trace.set_tracer_provider(_routing)
        if isinstance(metrics.get_meter_provider(), _ProxyMeterProvider):
            metrics.set_meter_provider(RoutingMeterProvider())
        return _routing


@dataclass
class TelemetryLease:
    """What one App holds from `start_telemetry`; `release()` on the App's exit."""

    settings: TelemetrySettings
    recorder: Recorder
    telemetry: Telemetry | None = None
    _released: bool = False

    async def release(self) -> None:
        """Stop the App's recorder and shut its SDK down (what is queued is exported,
        bounded by `FLUSH_SECONDS`); the privacy rules go back to those of the App still
        running (the latest started), or to what they were."""
        if self._released:
            return
        self._released = True
        self.recorder.stop()
        try:
            if self.telemetry is not None:
                atexit.unregister(self.telemetry.shutdown)
                await close_in_background(self.telemetry, FLUSH_SECONDS)
        finally:
            with _lock:
                _leases.remove(self)
                _apply_rules(_leases[-1].settings if _leases else None)


# The Apps running in this process, oldest first; the latest one's privacy rules apply.
_leases: list[TelemetryLease] = []
# What the rules changed, as it was before the first App started.
_before: dict[str, Any] = {}


def start_telemetry(settings: Settings, recorder: Recorder) -> TelemetryLease:
    """Apply `[telemetry]` for an App: privacy rules, ADK's content switch, and the App's
    own SDK (none for `exporter = "none"`), which `recorder` records into from now on."""
    lease = TelemetryLease(settings.telemetry, recorder)
    with _lock:
        _leases.append(lease)
        _apply_rules(settings.telemetry)
    try:
        lease.telemetry = _own_telemetry(settings)
    except BaseException:
        with _lock:
            _leases.remove(lease)
            _apply_rules(_leases[-1].settings if _leases else None)
        raise
    recorder.start(lease.telemetry)
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


def _own_telemetry(settings: Settings) -> Telemetry | None:
    built = build_telemetry(
        settings.telemetry, protocol_from_file=settings.origin("telemetry", "protocol") != "default"
    )
    if built is None:
        return None
    atexit.register(built.shutdown)  # an App never exited still exports what it queued
    routing = _install_routing()
    if routing is not None:
        for processor in routing.processors:  # ADK's server's, added to the global provider
            built.add_span_processor(processor)
        where = "ADK's spans too"
    else:
        where = "ADK's go to the process's own OpenTelemetry providers"
    logger.info("telemetry: exporting spans and metrics to %s (%s)", built.description, where)
    return built


def _user_id_key(settings: TelemetrySettings, current: bytes) -> bytes:
    secret = settings.user_id_secret
    if secret is None or not secret.get_secret_value():
        return current
    return hashlib.sha256(b"ifriend user ids\0" + secret.get_secret_value().encode()).digest()


async def close_in_background(telemetry: Telemetry, timeout: float) -> bool:
    """`telemetry.flush()` then `shutdown()` on a daemon thread, waited for at most
    `timeout` seconds (False if it took longer, or the flush timed out).

    The event loop keeps running meanwhile, and a hung export cannot hold up the exit.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bool] = loop.create_future()

    def work() -> None:
        deadline = time.monotonic() + timeout
        try:
            result = telemetry.flush(timeout)
            telemetry.shutdown(max(0.1, deadline - time.monotonic()))
        except Exception:
            logger.exception("telemetry: shutting down failed")
            result = False
        if not loop.is_closed():
            loop.call_soon_threadsafe(lambda: done.done() or done.set_result(result))

    threading.Thread(target=work, name="ifriend-telemetry-flush", daemon=True).start()
    try:
        return await asyncio.wait_for(asyncio.shield(done), timeout + 0.5)
    except TimeoutError:
        logger.warning("telemetry: export did not finish within %.1fs", timeout)
        return False
