"""A local stand-in for Slack, for tests and benchmarks (Slack's servers are not reachable).

- `FakeSlack`: an aiohttp server speaking enough of the Web API (`chat.postMessage`,
  `chat.update`, the streaming methods `chat.startStream` / `appendStream` / `stopStream`,
  `chat.postEphemeral`, `assistant.threads.*`, `reactions.add`, `files.info`, `auth.test`,
  `conversations.replies`, ...) to run the real slack-bolt app against it, recording every
  call; it answers 429 with `Retry-After`, or refuses a method, on demand. It serves files
  shared in messages (`add_file()`) only to a request carrying a bot token (otherwise it
  redirects to a sign-in page, as Slack does), and a Socket Mode websocket
  (`apps.connections.open` returns its URL).
- `signed_headers()` / `EventPoster`: Events API requests and interactive payloads (block
  actions) signed as Slack signs them; `SocketEvents`: the same sent as Socket Mode envelopes.
- `event_body()`, `mention()`, `message()`, `assistant_thread_started()`, `app_home_opened()`,
  `feedback_click()`: Events API and interactive payloads.
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
from urllib.parse import parse_qsl, quote

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
        self.ephemerals: list[dict[str, Any]] = []  # chat.postEphemeral messages
        self.files: dict[str, dict[str, Any]] = {}  # file id -> Slack file object
        self.downloads: list[Call] = []  # GET requests for files (method "files.download")
        self.files_need_sign_in = False  # True: every download goes to the sign-in page
        self.acks: dict[str, dict[str, Any]] = {}  # envelope_id -> what the client sent
        self.on_call: Callable[[Call], None] | None = None
        self._failures: dict[str, list[tuple[int, int | None, str]]] = {}
        self._contents: dict[str, bytes] = {}
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
        app.router.add_get("/api/{method}", self._api)
        app.router.add_get("/socket", self._socket)
        app.router.add_get("/files-pri/{team:[A-Z0-9]+}-{file_id:F[A-Z0-9]+}/download/{name}", self._download)
        app.router.add_get("/signin", self._signin)
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
        self._failures.setdefault(method, []).extend([(status, retry_after, "ratelimited")] * times)

    def refuse(self, method: str, error: str = "not_allowed", *, times: int = 1) -> None:
        """Answer the next `times` calls of `method` with `{"ok": false, "error": error}` (HTTP 200)."""
        self._failures.setdefault(method, []).extend([(200, None, error)] * times)

    def add_file(self, name: str, content: bytes, mimetype: str, **extra: Any) -> dict[str, Any]:
        """A file as Slack describes it in a message's `files` (its content served to bot tokens)."""
        file_id = f"F{len(self.files) + 1:07d}"
        url = f"http://127.0.0.1:{self.port}/files-pri/{self.team_id}-{file_id}/download/{quote(name)}"
        file = {
            "id": file_id,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1] if "." in name else "binary",
            "size": len(content),
            "mode": "hosted",
            "url_private": url.replace("/download/", "/"),
            "url_private_download": url,
            **extra,
        }
        self.files[file_id] = file
        self._contents[file_id] = content
        return file

    def slow(self, method: str, seconds: float, *, times: int = 1) -> None:
        """Answer the next `times` calls of `method` only after `seconds`."""
        self._delays.setdefault(method, []).extend([seconds] * times)

    # --- what happened --------------------------------------------------------------------

    def calls_to(self, method: str, *, ok: bool = True) -> list[Call]:
        return [c for c in self.calls if c.method == method and (c.status == 200 or not ok)]

    def posts(self, channel: str | None = None, thread_ts: str | None = None) -> list[dict[str, Any]]:
        """Messages posted (or streamed) by the bot, oldest first, with their current text."""
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
            status, retry_after, error = pending.pop(0)
            call.status = status if status != 200 else 400  # a refused call is not a success
            self.calls.append(call)
            await self._notify()
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            return web.json_response({"ok": False, "error": error}, status=status, headers=headers)
        body = self._answer(method, params)
        if not body.get("ok"):
            call.status = 400
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
            message = self._new_message(params, text=params.get("text", ""))
            return {"ok": True, "channel": params.get("channel"), "ts": message["ts"], "message": message}
        if method == "chat.update":
            key = (str(params.get("channel")), str(params.get("ts")))
            if key not in self.messages:
                return {"ok": False, "error": "message_not_found"}
            self.messages[key]["text"] = params.get("text", "")
            self.messages[key]["edits"] += 1
            self.messages[key]["streaming"] = False
            if "blocks" in params:
                self.messages[key]["blocks"] = _json(params["blocks"])
            return {"ok": True, "channel": key[0], "ts": key[1], "text": params.get("text", "")}
        if method in ("chat.startStream", "chat.appendStream", "chat.stopStream"):
            return self._stream(method, params)
        if method == "chat.postEphemeral":
            if not (params.get("channel") and params.get("user") and params.get("text")):
                return {"ok": False, "error": "invalid_arguments"}
            self.ephemerals.append(dict(params))
            return {"ok": True, "message_ts": self._next_ts()}
        if method.startswith("assistant.threads."):
            needed = {"setStatus": ("channel_id", "thread_ts"), "setTitle": ("channel_id", "thread_ts", "title"),
                      "setSuggestedPrompts": ("channel_id", "prompts")}.get(method.rsplit(".", 1)[1])
            if needed is None or any(params.get(name) in (None, "") for name in needed):
                return {"ok": False, "error": "invalid_arguments"}
            return {"ok": True}
        if method == "files.info":
            file = self.files.get(str(params.get("file")))
            return {"ok": True, "file": file} if file else {"ok": False, "error": "file_not_found"}
        if method == "conversations.replies":
            thread = params.get("ts")
            replies = [m for m in self.posts(str(params.get("channel"))) if m.get("thread_ts") == thread]
            return {"ok": True, "messages": replies, "has_more": False}
        if method == "apps.connections.open":
            return {"ok": True, "url": self.socket_url}
        return {"ok": True}

    def _new_message(self, params: Mapping[str, Any], *, text: str, **more: Any) -> dict[str, Any]:
        ts = self._next_ts()
        message = {
            "channel": params.get("channel"),
            "ts": ts,
            "text": text,
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "edits": 0,
            **more,
        }
        if params.get("thread_ts"):
            message["thread_ts"] = params["thread_ts"]
        if "blocks" in params:
            message["blocks"] = _json(params["blocks"])
        self.messages[(str(params.get("channel")), ts)] = message
        return message

    def _stream(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """A streamed message: started in a thread (for a named recipient outside DMs), appended
        to while streaming, stopped (with blocks) once; its text is the Markdown received."""
        markdown = str(params.get("markdown_text") or "") + "".join(
            c.get("text", "") for c in _json(params.get("chunks") or []) if c.get("type") == "markdown_text"
        )
        channel = str(params.get("channel") or "")
        if method == "chat.startStream":
            if not channel or not params.get("thread_ts"):
                return {"ok": False, "error": "invalid_arguments"}
            if not channel.startswith("D") and not (params.get("recipient_team_id") and params.get("recipient_user_id")):
                return {"ok": False, "error": "missing_recipient"}
            message = self._new_message(params, text=markdown, streaming=True, markdown=True)
            return {"ok": True, "channel": channel, "ts": message["ts"]}
        message = self.messages.get((channel, str(params.get("ts"))))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        if not message.get("streaming"):
            return {"ok": False, "error": "message_not_in_streaming_state"}
        message["text"] += markdown
        if method == "chat.stopStream":
            message["streaming"] = False
            if params.get("blocks"):
                message["blocks"] = _json(params["blocks"])
        return {"ok": True, "channel": channel, "ts": message["ts"]}

    # --- files ----------------------------------------------------------------------------

    async def _download(self, request: web.Request) -> web.StreamResponse:
        """A file's content for a bot token; anything else is sent to the sign-in page."""
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        file_id = request.match_info["file_id"]
        call = Call("files.download", {"file": file_id}, token)
        self.downloads.append(call)
        delays = self._delays.get("files.download")
        if delays:
            await asyncio.sleep(delays.pop(0))
        await self._notify()
        if file_id not in self._contents:
            call.status = 404
            return web.Response(status=404, text="not found")
        if not token or not token.startswith("xoxb-") or self.files_need_sign_in:
            call.status = 302
            raise web.HTTPFound(f"/signin?redir={quote(request.path)}")
        return web.Response(body=self._contents[file_id], content_type="application/octet-stream")

    async def _signin(self, request: web.Request) -> web.Response:
        return web.Response(text="<html><body>Sign in to Slack</body></html>", content_type="text/html")

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


def _json(value: Any) -> Any:
    """A form-encoded JSON argument decoded (JSON bodies arrive decoded already)."""
    return json.loads(value) if isinstance(value, str) else value


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


def dm(text: str, *, channel: str = "D0001", **extra: Any) -> dict[str, Any]:
    """A `message.im` event (in the agent view, give it the assistant thread's `thread_ts`)."""
    return message(text, channel=channel, channel_type="im", **extra)


def with_files(event: dict[str, Any], *files: dict[str, Any]) -> dict[str, Any]:
    """`event` as Slack sends a post that shares `files` (subtype `file_share`)."""
    return {**event, "subtype": "file_share", "files": list(files)}


def assistant_thread_started(
    *, user: str = "U0001", channel: str = "D0001", thread_ts: str | None = None, context_channel: str = "C0001"
) -> dict[str, Any]:
    """The `assistant_thread_started` event: a user opened a new thread in the agent view."""
    return {
        "type": "assistant_thread_started",
        "assistant_thread": {
            "user_id": user,
            "context": {"channel_id": context_channel, "team_id": TEAM_ID, "enterprise_id": None},
            "channel_id": channel,
            "thread_ts": thread_ts or new_ts(),
        },
        "event_ts": new_ts(),
    }


def app_home_opened(*, user: str = "U0001", channel: str = "D0001", tab: str = "messages") -> dict[str, Any]:
    """The `app_home_opened` event (the agent view opens on the `messages` tab)."""
    return {"type": "app_home_opened", "user": user, "channel": channel, "tab": tab, "event_ts": new_ts()}


def feedback_click(posted: Mapping[str, Any], *, positive: bool = True, user: str = "U0001") -> dict[str, Any]:
    """The `block_actions` payload Slack sends when `user` clicks a feedback button of the
    `posted` message (as the fake recorded it, blocks included)."""
    element = next(
        e
        for block in posted.get("blocks") or []
        if block.get("type") == "context_actions"
        for e in block["elements"]
        if e.get("type") == "feedback_buttons"
    )
    button = element["positive_button" if positive else "negative_button"]
    message = {k: posted[k] for k in ("ts", "text", "user", "bot_id", "blocks") if k in posted}
    if posted.get("thread_ts"):
        message["thread_ts"] = posted["thread_ts"]
    channel = str(posted["channel"])
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
        "api_app_id": "A0001",
        "token": "verification-token-unused",
        "container": {"type": "message", "message_ts": posted["ts"], "channel_id": channel, "is_ephemeral": False},
        "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}",
        "team": {"id": TEAM_ID, "domain": "fake"},
        "channel": {"id": channel, "name": "directmessage" if channel.startswith("D") else "general"},
        "message": message,
        "response_url": "https://hooks.slack.invalid/actions/unused",
        "actions": [
            {
                "type": "feedback_buttons",
                "action_id": element["action_id"],
                "block_id": "feedback",
                "value": button["value"],
                "action_ts": str(time.time()),
            }
        ],
    }


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

    async def act(self, payload: dict[str, Any]) -> int:
        """Sign and post an interactive payload (`payload=...`, form-encoded); the HTTP status."""
        form = "payload=" + quote(json.dumps(payload))
        headers = signed_headers(self.secret, form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        status, _ = await self.post_raw(form, headers)
        return status


class SocketEvents:
    """Sends events and interactive payloads as Socket Mode envelopes (the `EventPoster` calls),
    each returning 200 once the client acknowledged it."""

    def __init__(self, fake: FakeSlack, *, timeout: float = 10.0) -> None:
        self.fake = fake
        self.timeout = timeout

    async def send(self, event_or_body: dict[str, Any], *, event_id: str | None = None, retry_num: int | None = None) -> int:
        body = event_or_body if "event" in event_or_body else event_body(event_or_body, event_id=event_id)
        return await self._acked(await self.fake.send_envelope(body, retry_attempt=retry_num or 0))

    async def act(self, payload: dict[str, Any]) -> int:
        return await self._acked(await self.fake.send_envelope(payload, kind="interactive"))

    async def _acked(self, envelope_id: str) -> int:
        await self.fake.wait_for(lambda: envelope_id in self.fake.acks, timeout=self.timeout)
        return 200
