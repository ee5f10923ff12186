"""How events reach the bolt app: an aiohttp server (HTTP mode) or a Socket Mode connection.

HTTP mode checks a request before bolt sees it: the timestamp (bolt answers 500 to a
non-numeric one) and the signature over the raw bytes come first, so an unsigned request
gets 401 before its body is parsed; a signed one whose body is not UTF-8, JSON or a form
of the shapes Slack sends gets 400. Refusals are counted (`ifriend.slack.requests_refused`,
by `reason`) and logged on one line at most once a minute per reason. bolt's 404 for a
request no listener handles becomes a 200 (Slack retries a 404).
It also answers the probes of Cloud Run and Kubernetes: `GET /healthz` (the process serves)
and `GET /readyz` (every configured backend answers within its deadline, else 503).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app, send_async_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from ifriend.plugin_api import telemetry

from .events import RECEIVED
from .throttled import ThrottledLog

log = logging.getLogger("ifriend_slack")

UNAUTHORIZED = {"error": "invalid request"}
MALFORMED = {"error": "malformed request"}
REQUESTS_REFUSED = "ifriend.slack.requests_refused"
# A bound on a whole readiness check, for backends whose ping has no deadline of its own.
READY_TIMEOUT_SECONDS = 10.0


def fresh_timestamp(value: str | None, *, max_age: float, now: float | None = None) -> bool:
    """Whether a request's timestamp header is an integer within `max_age` seconds of now."""
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 12:
        return False
    now = time.time() if now is None else now
    return abs(now - int(value)) <= max_age


def signed(secret: bytes, timestamp: str, body: bytes, signature: str | None) -> bool:
    """Whether `signature` is Slack's `v0=` HMAC of the timestamp and the raw body."""
    if not signature:
        return False
    expected = hmac.new(secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"v0={expected}".encode(), signature.encode("utf-8", "replace"))


def parsed_request(body: bytes, request: web.Request) -> AsyncBoltRequest:
    """The bolt request for a signed body; `ValueError` if it is not what Slack sends (UTF-8,
    a JSON object, or a form whose `payload` is one)."""
    try:
        text = body.decode("utf-8")
        bolt_request = AsyncBoltRequest(body=text, query=request.query_string, headers=request.headers)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
        raise ValueError(type(exc).__name__) from None
    if not isinstance(bolt_request.body, dict):
        raise ValueError(f"a {type(bolt_request.body).__name__} body")
    if "event" in bolt_request.body and not isinstance(bolt_request.body["event"], dict):
        raise ValueError("an event that is not an object")
    return bolt_request


def acked_if_unhandled(response: BoltResponse) -> BoltResponse:
    return BoltResponse(status=200, body="") if response.status == 404 else response


@dataclass(frozen=True)
class BackendProbe:
    """One configured backend `/readyz` pings: its role (session, memory) and name."""

    role: str
    backend: str
    ping: Callable[[], Awaitable[object]]


def backend_probes(app: Any) -> list[BackendProbe]:
    """The App's session and memory backends, each with its service's `ready()` (what it
    needs to serve: a tiered store serves from MySQL while Redis is away), else `ping()`."""
    s = app.settings
    probes = []
    for role, backend, service in (
        ("session", s.session.backend, app.session_service),
        ("memory", s.memory.backend, app.memory_service),
    ):
        ping = getattr(service, "ready", None) or getattr(service, "ping", None)
        if callable(ping):
            probes.append(BackendProbe(role, backend, ping))
    return probes


async def _failure(probe: BackendProbe) -> Exception | None:
    """What the backend's ping raised, or None when it answered in time."""
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            await probe.ping()
    except Exception as exc:
        return exc
    return None


class HttpServer:
    """The Events API endpoint (and the OAuth pages when configured) on host:port."""

    def __init__(
        self,
        bolt: AsyncApp,
        *,
        host: str,
        port: int,
        path: str,
        max_age: float,
        signing_secret: str,
        probes: Sequence[BackendProbe] = (),
    ) -> None:
        self.bolt = bolt
        self.host = host
        self.port = port
        self.path = path
        self.max_age = max_age
        self.probes = list(probes)
        self._secret = signing_secret.encode()
        self._refusals = ThrottledLog(log)
        self._runner: web.AppRunner | None = None
        self._failing: dict[str, str] = {}

    def web_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(self.path, self.handle_event)
        flow = self.bolt.oauth_flow
        if flow is not None:
            app.router.add_get(flow.install_path, self.handle_install)
            app.router.add_get(flow.redirect_uri_path, self.handle_redirect)
        app.router.add_get("/healthz", self.handle_health)
        app.router.add_get("/readyz", self.handle_ready)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.web_app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("Slack events endpoint listening on http://%s:%d%s", self.host, self.port, self.path)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}{self.path}"

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def handle_event(self, request: web.Request) -> web.Response:
        RECEIVED.set(time.monotonic())
        timestamp = request.headers.get("X-Slack-Request-Timestamp")
        if timestamp is None or not fresh_timestamp(timestamp, max_age=self.max_age):
            return self._refuse(401, "timestamp", "a request with a missing, malformed or stale timestamp")
        body = await request.read()  # aiohttp refuses bodies over client_max_size (413)
        if not signed(self._secret, timestamp, body, request.headers.get("X-Slack-Signature")):
            return self._refuse(401, "signature", "a request without a valid signature")
        try:
            bolt_request = parsed_request(body, request)
        except ValueError as exc:
            return self._refuse(400, "body", f"a signed body that cannot be parsed ({exc})")
        try:
            response = await self.bolt.async_dispatch(bolt_request)
        except Exception as exc:  # a signed shape bolt cannot handle: no 500, no traceback
            return self._refuse(400, "body", f"a signed body bolt could not handle ({type(exc).__name__})")
        return await to_aiohttp_response(acked_if_unhandled(response))

    def _refuse(self, status: int, reason: str, what: str) -> web.Response:
        telemetry.count(REQUESTS_REFUSED, reason=reason)
        self._refusals.log(logging.WARNING, reason, "Slack events endpoint answered %d to %s", status, what)
        return web.json_response(UNAUTHORIZED if status == 401 else MALFORMED, status=status)

    async def handle_install(self, request: web.Request) -> web.Response:
        flow = self.bolt.oauth_flow
        assert flow is not None
        return await to_aiohttp_response(await flow.handle_installation(await to_bolt_request(request)))

    async def handle_redirect(self, request: web.Request) -> web.Response:
        flow = self.bolt.oauth_flow
        assert flow is not None
        return await to_aiohttp_response(await flow.handle_callback(await to_bolt_request(request)))

    async def handle_health(self, request: web.Request) -> web.Response:
        """Liveness: the process serves HTTP (no backend is asked)."""
        return web.Response(text="ok")

    async def handle_ready(self, request: web.Request) -> web.Response:
        """Readiness: 200 when every backend answered its ping, else 503 naming the failing ones.

        The prober sees error types only; the messages (servers, causes) go to the log.
        """
        failures = await asyncio.gather(*(_failure(p) for p in self.probes))
        results = list(zip(self.probes, failures, strict=True))
        failed = [(p, exc) for p, exc in results if exc is not None]
        self._note_readiness({f"{p.role} backend {p.backend!r}": _describe(exc) for p, exc in failed})
        body = {
            "ready": not failed,
            "failing": sorted({p.backend for p, _ in failed}),
            "backends": {
                p.role: {"backend": p.backend, "status": "ok" if exc is None else type(exc).__name__}
                for p, exc in results
            },
        }
        return web.json_response(body, status=503 if failed else 200)

    def _note_readiness(self, failing: dict[str, str]) -> None:
        """Log when readiness changes (a probe every few seconds must not flood the log)."""
        if failing.keys() == self._failing.keys():
            return
        self._failing = failing
        if failing:
            log.warning("not ready: %s", "; ".join(f"{k}: {v}" for k, v in failing.items()))
        else:
            log.info("ready: every backend answers")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class SocketModeConnection:
    """A Socket Mode session: `apps.connections.open` on the Web API, then a websocket whose
    envelopes are dispatched to bolt and acknowledged with their `envelope_id`."""

    def __init__(
        self, bolt: AsyncApp, *, app_token: str, web_client: Any, ping_interval: float, logger: logging.Logger
    ) -> None:
        self.bolt = bolt
        self.app_token = app_token
        self.web_client = web_client
        self.ping_interval = ping_interval
        self.logger = logger
        self.client: Any = None

    async def start(self) -> None:
        from slack_sdk.socket_mode.aiohttp import SocketModeClient

        self.client = SocketModeClient(
            app_token=self.app_token,
            logger=self.logger,
            web_client=self.web_client,
            ping_interval=self.ping_interval,
        )
        self.client.socket_mode_request_listeners.append(self.handle)
        await self.client.connect()
        log.info("Slack Socket Mode connected")

    async def handle(self, client: Any, request: Any) -> None:
        RECEIVED.set(time.monotonic())
        started = time.time()
        response = await run_async_bolt_app(self.bolt, request)
        await send_async_response(client, request, acked_if_unhandled(response), started)

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await client.close()
