"""A local stand-in for Slack, for tests and benchmarks (Slack's servers are not reachable).

- `FakeSlack`: an aiohttp server speaking enough of the Web API (`chat.postMessage`,
  `chat.update`, `reactions.add`, `auth.test`, `conversations.replies`, ...) to run the real
  slack-bolt app against it, recording every call; it answers 429 with `Retry-After` on demand,
  and serves a Socket Mode websocket (`apps.connections.open` returns its URL).
- `signed_headers()` / `EventPoster`: Events API requests signed as Slack signs them.
- `event_body()`, `mention()`, `message()`: Events API payloads.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import ClientSession, WSMsgType, web

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T0001"


@dataclass
class Call:
    """One Web API call the fake received."""

    method: str
    params: dict[str, Any]
    token: str | None
    at: float = field(default_factory=time.perf_counter)
    status: int = 200


class FakeSlack:
    """`async with FakeSlack() as slack:`; point the Web API client at `slack.api_url`."""

    def __init__(self, *, bot_user_id: str = BOT_USER_ID, bot_id: str = BOT_ID, team_id: str = TEAM_ID) -> None:
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.team_id = team_id
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) -> message
        self.acks: dict[str, dict[str, Any]] = {}  # envelope_id -> what the client sent
        self.on_call: Callable[[Call], None] | None = None
        self._failures: dict[str, list[tuple[int, int | None]]] = {}
        self._delays: dict[str, list[float]] = {}
        self._ts = itertools.count(1)
        self._changed = asyncio.Condition()
        self._sockets: list[web.WebSocketResponse] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- server ---------------------------------------------------------------------------

    async def __aenter__(self) -> FakeSlack:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def socket_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/socket"

    # --- behaviour on demand --------------------------------------------------------------

    def fail(self, method: str, *, status: int = 429, retry_after: int | None = 0, times: int = 1) -> None:
        """Answer the next `times` calls of `method` with `status` (and `Retry-After`)."""
        self._failures.setdefault(method, []).extend([(status, retry_after)] * times)

    def slow(self, method: str, seconds: float, *, times: int = 1) -> None:
        """Answer the next `times` calls of `method` only after `seconds`."""
        self._delays.setdefault(method, []).extend([seconds] * times)

    # --- what happened --------------------------------------------------------------------

    def calls_to(self, method: str, *, ok: bool = True) -> list[Call]:
        return [c for c in self.calls if c.method == method and (c.status == 200 or not ok)]

    def posts(self, channel: str | None = None, thread_ts: str | None = None) -> list[dict[str, Any]]:
        """Messages posted by the bot, oldest first, with their current (updated) text."""
        found = [
            m
            for m in self.messages.values()
            if (channel is None or m["channel"] == channel)
            and (thread_ts is None or m.get("thread_ts") == thread_ts)
        ]
        return sorted(found, key=lambda m: float(m["ts"]))

    async def wait_for(self, predicate: Callable[[], Any], *, timeout: float = 10.0) -> Any:
        """Wait until `predicate()` is truthy (checked after every call); its value."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                while not (value := predicate()):
                    await self._changed.wait()
                return value

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- the Web API ----------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        raw = await request.read()
        params: dict[str, Any] = dict(request.query)
        if raw:
            if request.content_type == "application/json":
                params.update(json.loads(raw))
            else:
                params.update(parse_qsl(raw.decode()))
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else params.get("token")
        call = Call(method, params, token)
        delays = self._delays.get(method)
        if delays:
            await asyncio.sleep(delays.pop(0))
        pending = self._failures.get(method)
        if pending:
            status, retry_after = pending.pop(0)
            call.status = status
            self.calls.append(call)
            await self._notify()
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            return web.json_response({"ok": False, "error": "ratelimited"}, status=status, headers=headers)
        body = self._answer(method, params)
        self.calls.append(call)
        if self.on_call is not None:
            self.on_call(call)
        await self._notify()
        return web.json_response(body)

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _answer(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://fake.slack.invalid/",
                "team": "Fake",
                "user": "ifriend",
                "team_id": self.team_id,
                "user_id": self.bot_user_id,
                "bot_id": self.bot_id,
                "is_enterprise_install": False,
            }
        if method == "chat.postMessage":
            ts = self._next_ts()
            message = {
                "channel": params.get("channel"),
                "ts": ts,
                "text": params.get("text", ""),
                "user": self.bot_user_id,
                "bot_id": self.bot_id,
                "edits": 0,
            }
            if params.get("thread_ts"):
                message["thread_ts"] = params["thread_ts"]
            self.messages[(str(params.get("channel")), ts)] = message
            return {"ok": True, "channel": params.get("channel"), "ts": ts, "message": message}
        if method == "chat.update":
            key = (str(params.get("channel")), str(params.get("ts")))
            if key not in self.messages:
                return {"ok": False, "error": "message_not_found"}
            self.messages[key]["text"] = params.get("text", "")
            self.messages[key]["edits"] += 1
            return {"ok": True, "channel": key[0], "ts": key[1], "text": params.get("text", "")}
        if method == "conversations.replies":
            thread = params.get("ts")
            replies = [m for m in self.posts(str(params.get("channel"))) if m.get("thread_ts") == thread]
            return {"ok": True, "messages": replies, "has_more": False}
        if method == "apps.connections.open":
            return {"ok": True, "url": self.socket_url}
        return {"ok": True}

    # --- Socket Mode ----------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A1"}})
        await self._notify()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    data = json.loads(msg.data)
                    if "envelope_id" in data:
                        self.acks[data["envelope_id"]] = data
                        await self._notify()
        finally:
            self._sockets.remove(ws)
        return ws

    @property
    def connected(self) -> bool:
        return bool(self._sockets)

    async def send_envelope(self, payload: dict[str, Any], *, kind: str = "events_api", retry_attempt: int = 0) -> str:
        """Send one Socket Mode envelope to the connected client; its envelope_id."""
        envelope_id = str(uuid.uuid4())
        await self._sockets[-1].send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "accepts_response_payload": False,
                "retry_attempt": retry_attempt,
                "retry_reason": "",
                "payload": payload,
            }
        )
        return envelope_id


# --- Events API requests ----------------------------------------------------------------------


def signature(secret: str, timestamp: str, body: str) -> str:
    """Slack's v0 request signature."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: str, *, timestamp: str | None = None, retry_num: int | None = None) -> dict[str, str]:
    timestamp = str(int(time.time())) if timestamp is None else timestamp
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature(secret, timestamp, body),
    }
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    return headers


_post_ts = itertools.count(1)


def new_ts() -> str:
    """A fresh, increasing Slack message timestamp."""
    return f"{int(time.time())}.{next(_post_ts):06d}"


def event_body(event: dict[str, Any], *, team: str = TEAM_ID, event_id: str | None = None) -> dict[str, Any]:
    return {
        "token": "verification-token-unused",
        "team_id": team,
        "api_app_id": "A0001",
        "event": {"team": team, "event_ts": event.get("ts"), **event},
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [
            {"enterprise_id": None, "team_id": team, "user_id": BOT_USER_ID, "is_bot": True}
        ],
    }


def mention(
    text: str, *, user: str = "U0001", channel: str = "C0001", ts: str | None = None,
    thread_ts: str | None = None, bot_user_id: str = BOT_USER_ID,
) -> dict[str, Any]:
    """An `app_mention` event (`<@bot> text`)."""
    event = {
        "type": "app_mention",
        "user": user,
        "text": f"<@{bot_user_id}> {text}",
        "ts": ts or new_ts(),
        "channel": channel,
        "client_msg_id": str(uuid.uuid4()),
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def message(
    text: str, *, user: str = "U0001", channel: str = "C0001", ts: str | None = None,
    thread_ts: str | None = None, channel_type: str = "channel", **extra: Any,
) -> dict[str, Any]:
    """A `message` event."""
    event = {
        "type": "message",
        "user": user,
        "text": text,
        "ts": ts or new_ts(),
        "channel": channel,
        "channel_type": channel_type,
        "client_msg_id": str(uuid.uuid4()),
        **extra,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def as_message(app_mention: dict[str, Any]) -> dict[str, Any]:
    """The `message` event Slack also sends for the post an `app_mention` is about."""
    return {**app_mention, "type": "message", "channel_type": "channel"}


class EventPoster:
    """Posts signed Events API requests to a bolt app's HTTP endpoint."""

    def __init__(self, url: str, secret: str) -> None:
        self.url = url
        self.secret = secret
        self._session: ClientSession | None = None

    async def __aenter__(self) -> EventPoster:
        self._session = ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def post_raw(self, body: str, headers: Mapping[str, str]) -> tuple[int, str]:
        assert self._session is not None, "use `async with EventPoster(...)`"
        async with self._session.post(self.url, data=body.encode(), headers=dict(headers)) as resp:
            return resp.status, await resp.text()

    async def send(
        self, event_or_body: dict[str, Any], *, retry_num: int | None = None, timestamp: str | None = None,
        event_id: str | None = None, secret: str | None = None,
    ) -> int:
        """Sign and post an event (wrapped in an Events API body unless it already is one);
        the HTTP status."""
        body = event_or_body if "event" in event_or_body else event_body(event_or_body, event_id=event_id)
        text = json.dumps(body)
        headers = signed_headers(secret or self.secret, text, timestamp=timestamp, retry_num=retry_num)
        status, _ = await self.post_raw(text, headers)
        return status
