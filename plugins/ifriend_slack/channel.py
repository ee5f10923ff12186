"""The Slack channel: receive events, ack at once, answer in the background.

Each post bolt hands over becomes a task (kept in a set, so `close()` can wait for the
turns in flight). Posts of one conversation (a user in a thread, or in a DM) are handled one
at a time in arrival order: a task's first step is taking its conversation's FIFO lock, and
tasks start in the order they were created.

A turn: show the bot is working, read the files shared with the post, run the agent,
stream the answer (natively where Slack allows it, else posted and edited) with feedback
buttons under it. The agent view's events set suggested prompts; a click on a feedback
button is recorded against its turn.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import traceback
from collections.abc import Coroutine
from contextlib import aclosing
from typing import Any

from cachetools import TTLCache
from google.adk.sessions.base_session_service import GetSessionConfig

from ifriend.plugin_api import KeyedLocks, PluginError, redact, telemetry

from . import agent_view, feedback, webapi
from .dedupe import SLACK_DEDUPLICATED, SlackState, build_state
from .events import ACKED, RECEIVED, Post, parse_post
from .fallbacks import Fallbacks
from .files import FileReader, refusal_notice
from .replies import ReplyStream
from .settings import SlackSettings
from .streaming import NativeStream
from .working import Working

log = logging.getLogger("ifriend_slack")

NEW_SESSION_REPLY = "Started a new conversation. What would you like to talk about?"
STREAMING = "streaming"


class SlackChannel:
    """`[channels.slack]`: serves Slack over Socket Mode or HTTP until cancelled."""

    def __init__(self, context: Any, settings: SlackSettings) -> None:
        self.context = context
        self.settings = settings
        self.secrets = dict.fromkeys(settings.secrets(), "***")
        self.state: SlackState = build_state(
            settings.dedupe, backends=context.settings.backends, ttl_seconds=settings.dedupe_ttl_seconds
        )
        self.bolt: Any = None
        self.client: Any = None
        self.transport: Any = None
        self.fallbacks = Fallbacks()
        self.unanswered = webapi.Reporter()
        self.files: FileReader | None = None
        self._http_session: Any = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._lanes = KeyedLocks()
        # (user, session id) of threads this process answered in.
        self._joined: TTLCache[tuple[str, str], bool] = TTLCache(maxsize=100_000, ttl=7 * 86400)
        self._started = False
        self._closing = False
        self.ready = asyncio.Event()

    # --- life cycle ----------------------------------------------------------------------

    def build(self) -> Any:
        """Build the bolt app and its Web API client (no I/O; `start()` calls it)."""
        from .app import build_bolt_app, web_client

        if self.bolt is None:
            s = self.settings
            token = s.bot_token.get_secret_value() if s.bot_token is not None and s.oauth is None else None
            self.client = web_client(s, token=token)
            self.bolt = build_bolt_app(s, client=self.client, listeners=self, reporter=self.unanswered)
        return self.bolt

    async def start(self) -> None:
        """Connect (Socket Mode) or listen (HTTP); return once events can arrive."""
        if self._started:
            return
        await self.state.connect()
        self._started = True
        from .app import bolt_logger, prepare_oauth, web_client
        from .server import HttpServer, SocketModeConnection, backend_probes

        import aiohttp

        bolt = self.build()
        # One connection pool for every Web API call (bolt's per-request clients share it).
        self._http_session = aiohttp.ClientSession()
        self.client.session = self._http_session
        self.files = FileReader(self.settings, session=self._http_session)
        s = self.settings
        if s.mode == "http":
            await prepare_oauth(bolt)
            assert s.signing_secret is not None  # the settings require it in HTTP mode
            self.transport = HttpServer(
                bolt,
                host=s.host,
                port=s.port,
                path=s.path,
                max_age=s.max_request_age_seconds,
                signing_secret=s.signing_secret.get_secret_value(),
                probes=backend_probes(self.context.app),
            )
        else:
            assert s.app_token is not None
            self.transport = SocketModeConnection(
                bolt,
                app_token=s.app_token.get_secret_value(),
                web_client=web_client(s, token=None),
                ping_interval=s.socket_ping_interval_seconds,
                logger=bolt_logger(s),
            )
        try:
            await self.transport.start()
        except Exception as exc:
            raise PluginError(f"the Slack channel could not start: {self._describe(exc)}") from None
        self.ready.set()

    async def serve(self) -> None:
        """Serve until cancelled (the caller then calls `close()`)."""
        await self.start()
        await asyncio.Event().wait()

    async def close(self) -> None:
        """Stop taking events, let turns in flight finish (up to the grace period), release."""
        if self._closing:
            return
        self._closing = True
        transport, self.transport = self.transport, None
        if transport is not None:
            await transport.close()
        await self.drain(self.settings.shutdown_grace_seconds)
        if self.bolt is not None:
            from .app import close_oauth

            await close_oauth(self.bolt)
        await self.state.close()
        session, self._http_session = self._http_session, None
        if session is not None:
            await session.close()

    async def ping(self) -> str:
        """Slack's `auth.test` with the bot token (what `ifriend doctor` checks)."""
        if self.settings.oauth is not None:
            return "not checked: with OAuth each workspace has its own token"
        self.build()
        answer = await self.client.auth_test()
        return f"auth.test: bot {answer.get('user_id')} in team {answer.get('team_id')}"

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for the tasks in flight; cancel those still running after `timeout`."""
        while self._tasks:
            pending = set(self._tasks)
            done, still = await asyncio.wait(pending, timeout=timeout)
            if still:
                log.warning("cancelling %d Slack turn(s) still running at shutdown", len(still))
                for task in still:
                    task.cancel()
                await asyncio.gather(*still, return_exceptions=True)

    @property
    def url(self) -> str:
        """The HTTP endpoint (HTTP mode, once started)."""
        return self.transport.url

    # --- events -------------------------------------------------------------------------

    async def on_post(self, body: dict[str, Any], context: Any, request: Any) -> None:
        """bolt's listener for `app_mention` and `message` (already acked)."""
        ACKED.set(time.monotonic())
        retry = (request.headers.get("x-slack-retry-num") or [None])[0]
        post = parse_post(
            body,
            bot_user_id=context.bot_user_id,
            team_id=context.team_id,
            retry_num=int(retry) if retry and retry.isdigit() else None,
        )
        if post is None:
            return
        self.submit(post, context.client)

    def submit(self, post: Post, client: Any) -> asyncio.Task[None]:
        """Handle `post` in the background (a tracked task)."""
        return self._spawn(self._handle(post, client))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def on_assistant_thread_started(self, event: dict[str, Any], context: Any) -> None:
        """A new thread in the agent view: offer the suggested prompts in it."""
        thread = agent_view.started_thread(event)
        if thread is not None:
            await agent_view.suggest_prompts(context.client, self.settings, channel=thread[0], thread_ts=thread[1])

    async def on_app_home_opened(self, event: dict[str, Any], context: Any) -> None:
        """The messages tab (the agent view) opened: offer the suggested prompts there."""
        channel = event.get("channel")
        if event.get("tab") == "messages" and isinstance(channel, str) and channel:
            await agent_view.suggest_prompts(context.client, self.settings, channel=channel)

    async def on_feedback(self, ack: Any, body: dict[str, Any], action: dict[str, Any], context: Any) -> None:
        """A feedback button clicked: recorded against its turn, thanked ephemerally."""
        await ack()
        click = feedback.Click.parse(body, action)
        if click is None:
            log.debug("ignoring a feedback payload that is not ours")
            return
        feedback.record_span(click)
        try:
            recorded = await self.context.app.conversations.add_event(
                user_id=click.turn.user, session_id=click.turn.session, event=click.event()
            )
            if not recorded:
                log.info("feedback for a session that no longer exists (trace_id=%s)", click.turn.trace_id)
        except Exception as exc:
            log.error("feedback not recorded (trace_id=%s): %s", click.turn.trace_id, self._describe(exc))
        try:
            await context.client.chat_postEphemeral(
                channel=click.channel, user=click.by, thread_ts=click.thread_ts, text=self.settings.feedback_reply
            )
        except Exception as exc:
            log.debug("could not thank for the feedback: %s", type(exc).__name__)

    async def _handle(self, post: Post, client: Any) -> None:
        async with self._lanes.hold(post.conversation_key):
            try:
                if not await self._addressed(post):
                    return
                if not await self.state.claim(post.post_key):
                    log.debug("dropping a post already taken (retry %s)", post.retry_num)
                    telemetry.count(
                        SLACK_DEDUPLICATED, reason="retry" if post.retry_num else "duplicate"
                    )
                    return
                await self._answer(post, client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("Slack post not handled: %s", self._describe(exc))

    async def _addressed(self, post: Post) -> bool:
        """A mention, a DM, or a reply in a thread the bot takes part in (for this user)."""
        if post.mentioned or post.direct:
            return True
        if not post.in_thread:
            return False
        key = (post.user, post.thread_session_id)
        if key in self._joined:
            return True
        if not await self._thread_session_exists(post):
            return False
        self._joined[key] = True
        return True

    async def _session_id(self, post: Post) -> str:
        """The session a post belongs to (a DM outside a thread: the DM's current one)."""
        if not post.direct or post.in_thread:
            return post.thread_session_id
        pointer = f"dm:{post.team}:{post.channel}:{post.user}"
        if post.asks_for_new_session:
            session_id = f"{post.dm_prefix}-{post.ts}"
            await self.state.set(pointer, session_id)
            return session_id
        current = await self.state.get(pointer)
        if current is None:
            # The pointer is a cache: the session store says which DM session is the latest.
            ids = await self.context.app.conversations.list_sessions(user_id=post.user)
            mine = [i for i in ids if i == post.dm_prefix or i.startswith(post.dm_prefix + "-")]
            current = mine[-1] if mine else post.dm_prefix
            await self.state.set(pointer, current)
        return current

    async def _answer(self, post: Post, client: Any) -> None:
        session_id = await self._session_id(post)
        if post.asks_for_new_session:
            try:
                await webapi.delivering(self._replies(post, client).finish(NEW_SESSION_REPLY))
            except webapi.Unreachable as exc:
                self.unanswered.report("reply", exc)
            return
        working = Working(client, post, self.settings, self.fallbacks)
        working.begin()
        if await self._starts_agent_thread(post):
            title = post.text or ", ".join(f.name for f in post.files)
            self._spawn(agent_view.set_title(client, channel=post.channel, thread_ts=post.thread_ts or "", text=title))
        with telemetry.turn(
            "slack",
            user_id=post.user,
            start=RECEIVED.get(),
            attributes={"slack.team": post.team, "slack.channel": post.channel, "slack.thread": post.thread_ts or ""},
        ) as turn_span:
            span = turn_span.span
            turn_span.acked(ACKED.get())
            trace_id = _trace_id(span)
            stream = self._replies(post, client)
            try:
                attachments = await self._read_files(post, client, turn_span)
                notice = refusal_notice(attachments)
                turn = self.context.app.conversations.turn(
                    user_id=post.user, session_id=session_id, text=post.text, attachments=attachments
                )
                async with aclosing(turn):
                    async for reply in turn:
                        if reply.final:
                            blocks = self._feedback(span, post, session_id, trace_id)
                            await webapi.delivering(stream.finish(notice + reply.text, blocks=blocks))
                        else:
                            await stream.show(notice + reply.text)
                if post.in_thread or not post.direct:
                    self._joined[(post.user, post.thread_session_id)] = True
            except asyncio.CancelledError:
                await stream.abort()
                raise
            except webapi.Unreachable as exc:
                # Slack is away: no apology could reach it either.
                await stream.abort()
                turn_span.failed(exc.__cause__ or exc)
                self.unanswered.report("reply", exc, trace_id=trace_id)
            except Exception as exc:
                await stream.abort()
                turn_span.failed(exc)
                # The exception's type and where it was raised; not its message, which may
                # quote the conversation.
                log.error(
                    "Slack turn failed (trace_id=%s, session=%s): %s\nTraceback (most recent call last):\n%s",
                    trace_id,
                    session_id,
                    type(exc).__qualname__,
                    redact("".join(traceback.format_tb(exc.__traceback__)), self.secrets).rstrip(),
                )
                await self._apologize(client, post, trace_id)
            finally:
                await working.end()

    def _replies(self, post: Post, client: Any) -> ReplyStream | NativeStream:
        """How the answer is shown: streamed natively where Slack can (in a thread, unless the
        workspace refused lately), else posted and edited."""
        s = self.settings

        def posted(messages: list[str] | None = None) -> ReplyStream:
            return ReplyStream(
                client,
                channel=post.channel,
                thread_ts=post.reply_thread_ts,
                limit=s.max_message_chars,
                interval=s.update_interval_seconds,
                posted=messages or [],
            )

        thread_ts = post.reply_thread_ts
        if not s.streaming or thread_ts is None or self.fallbacks.refused(STREAMING, post.team, post.kind):
            return posted()
        return NativeStream(
            client,
            channel=post.channel,
            thread_ts=thread_ts,
            team=post.user_team or post.team,
            user=post.user,
            limit=s.max_streamed_chars,
            interval=s.update_interval_seconds,
            fallback=posted,
            on_refused=lambda exc: self.fallbacks.note(STREAMING, post.team, post.kind, exc),
        )

    async def _read_files(self, post: Post, client: Any, turn_span: Any) -> list[Any]:
        if not post.files:
            return []
        assert self.files is not None, "the channel reads files once started"
        attachments = await self.files.read_all(post.files, client=client)
        refused = sum(a.refused is not None for a in attachments)
        turn_span.set_attribute("slack.files.read", len(attachments) - refused)
        turn_span.set_attribute("slack.files.refused", refused)
        return attachments

    def _feedback(self, span: Any, post: Post, session_id: str, trace_id: str) -> list[dict[str, Any]] | None:
        if not self.settings.feedback:
            return None
        ref = feedback.turn_ref(span, user=post.user, session=session_id, fallback_trace_id=trace_id)
        return feedback.blocks(ref)

    async def _starts_agent_thread(self, post: Post) -> bool:
        """Whether `post` is the first message of a DM thread (an agent view thread to name)."""
        if not (self.settings.thread_titles and post.direct and post.in_thread):
            return False
        if (post.user, post.thread_session_id) in self._joined:
            return False
        return not await self._thread_session_exists(post)

    async def _thread_session_exists(self, post: Post) -> bool:
        conversations = self.context.app.conversations
        session = await conversations.session_service.get_session(
            app_name=conversations.app_name,
            user_id=post.user,
            session_id=post.thread_session_id,
            config=GetSessionConfig(num_recent_events=1),
        )
        return session is not None

    async def _apologize(self, client: Any, post: Post, trace_id: str) -> None:
        text = self.settings.apology.replace("{trace_id}", trace_id)
        try:
            await client.chat_postMessage(channel=post.channel, thread_ts=post.reply_thread_ts, text=text)
        except Exception as exc:
            log.error("could not post the apology (trace_id=%s): %s", trace_id, self._describe(exc))

    def _describe(self, exc: BaseException) -> str:
        text = str(exc)
        return redact(f"{type(exc).__name__}: {text}" if text else type(exc).__name__, self.secrets)


def _trace_id(span: Any) -> str:
    context = span.get_span_context()
    if context.is_valid:
        return format(context.trace_id, "032x")
    return secrets.token_hex(16)  # no tracing configured: still a token to find the log line by
