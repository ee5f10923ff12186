"""`Conversations`: what every channel uses to run a turn of the agent.

It owns one ADK `Runner` over the App's session and memory services. Turns of
one conversation (user id + session id) run one at a time in this process, in
the order they arrive; different conversations run concurrently. A turn that
loses a race with another replica (`StaleSessionError`, or `AlreadyExistsError`
when both create the session) is run again once on a freshly loaded session,
under the same invocation id: ADK's Runner then finds the user's message if
the first attempt stored it, and neither drops nor repeats it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field

from google.adk.agents.base_agent import BaseAgent
from google.adk.agents.run_config import RunConfig, StreamingMode
from google.adk.apps.app import App as AdkApp
from google.adk.apps.app import EventsCompactionConfig
from google.adk.errors import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.events.event import Event
from google.adk.memory.base_memory_service import BaseMemoryService
from google.adk.runners import Runner
from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig

from . import telemetry
from .attachments import Attachment, AttachmentsPlugin, stored_message
from .locks import KeyedLocks
from .telemetry.recorder import Recorder

logger = logging.getLogger(__name__)

RETRIED_ERRORS = (StaleSessionError, AlreadyExistsError)


@dataclass(frozen=True)
class Reply:
    """One update of a turn's reply.

    `text` is the reply so far, accumulated over the turn (the text of every
    model message of the turn, separated by blank lines). It normally grows;
    after a retried turn it may be replaced by shorter text, so a channel that
    prints increments should check it still extends what it printed.
    """

    text: str  # the reply text so far (accumulated over the turn)
    final: bool  # True on the turn's last update


class Conversations:
    """Runs turns of one agent for every channel of an App."""

    def __init__(
        self,
        *,
        app_name: str,
        agent: BaseAgent,
        session_service: BaseSessionService,
        memory_service: BaseMemoryService | None = None,
        streaming: bool = True,
        after_turn: Callable[..., None] | None = None,
        telemetry: Recorder | None = None,
        compaction: EventsCompactionConfig | None = None,
    ) -> None:
        self.app_name = app_name
        # The App's recorder, which records its turns (None: whichever is in flight).
        self.telemetry = telemetry
        # Called (user_id=, session_id=) once the final reply is handed over; must not block.
        self.after_turn = after_turn
        self.session_service = session_service
        # Built as ADK builds one for Runner(app_name=, agent=): any app name ifriend accepts.
        app = AdkApp.model_construct(name=app_name, root_agent=agent, events_compaction_config=compaction)
        self.runner = Runner(
            app=app,
            session_service=session_service,
            memory_service=memory_service,
            auto_create_session=True,
        )
        self._attachments = AttachmentsPlugin()
        self.runner.plugin_manager.register_plugin(self._attachments)
        mode = StreamingMode.SSE if streaming else StreamingMode.NONE
        self.run_config = RunConfig(streaming_mode=mode)
        self._locks = KeyedLocks()

    @property
    def agent_name(self) -> str:
        """The root agent's name (`gen_ai.agent.name` of the turn spans)."""
        return self.runner.agent.name

    @telemetry.traced_turn  # the `ifriend.turn` span (or the channel's): ADK's spans nest in it
    async def turn(
        self, *, user_id: str, session_id: str, text: str, attachments: Sequence[Attachment] = ()
    ) -> AsyncIterator[Reply]:
        """Send `text` (and files) from `user_id` to session `session_id`; yield the reply as it grows.

        The session is created on first use. The last update has `final=True`.
        The session stores a note per attachment, not its bytes; the model reads the
        files during this turn only (see `ifriend.attachments`).
        An agent's exception propagates. Consume it to the end, or close it
        (`contextlib.aclosing`): the conversation stays locked meanwhile.
        """
        message = stored_message(text, attachments)
        invocation_id = f"e-{uuid.uuid4()}"
        reply, shown = ReplyText(), ""
        lock = self._locks.hold((user_id, session_id))
        async with lock, self._attachments.attached(invocation_id, attachments):
            for attempt in (1, 2):
                events = self.runner.run_async(
                    user_id=user_id,
                    session_id=session_id,
                    new_message=message,
                    invocation_id=invocation_id,
                    run_config=self.run_config,
                )
                try:
                    async with aclosing(events):
                        async for event in events:
                            if reply.add(event) and reply.text != shown:
                                shown = reply.text
                                yield Reply(shown, final=False)
                except RETRIED_ERRORS as exc:
                    if attempt == 2:
                        raise
                    logger.warning(
                        "turn %s lost a race with another writer (%s); running it again",
                        invocation_id,
                        type(exc).__name__,
                    )
                    telemetry.turn_retried()
                    reply.drop_pending()
                    continue
                break
            try:
                yield Reply(reply.text, final=True)
            finally:  # the channel has the final reply (or closed the turn after it)
                if self.after_turn is not None:
                    self.after_turn(user_id=user_id, session_id=session_id)

    async def add_event(self, *, user_id: str, session_id: str, event: Event) -> bool:
        """Append `event` to an existing session without running the agent (a user's feedback,
        say), in order with the conversation's turns; False if there is no such session."""
        async with self._locks.hold((user_id, session_id)):
            try:
                return await self._append(user_id, session_id, event)
            except StaleSessionError:  # another replica wrote meanwhile: read it again
                return await self._append(user_id, session_id, event)

    async def _append(self, user_id: str, session_id: str, event: Event) -> bool:
        session = await self.session_service.get_session(
            app_name=self.app_name,
            user_id=user_id,
            session_id=session_id,
            config=GetSessionConfig(num_recent_events=1),
        )
        if session is None:
            return False
        await self.session_service.append_event(session, event)
        return True

    async def new_session_id(self, *, user_id: str) -> str:
        """Create an empty session for `user_id`; its id."""
        session = await self.session_service.create_session(app_name=self.app_name, user_id=user_id)
        return session.id

    async def list_sessions(self, *, user_id: str) -> list[str]:
        """The ids of `user_id`'s sessions, least recently updated first."""
        found = await self.session_service.list_sessions(app_name=self.app_name, user_id=user_id)
        ordered = sorted(found.sessions, key=lambda s: (s.last_update_time, s.id))
        return [s.id for s in ordered]

    async def close(self) -> None:
        """Close the Runner (its toolsets and plugins)."""
        await self.runner.close()


@dataclass
class ReplyText:
    """The text of a turn's reply: stored model messages, then the one streaming in."""

    messages: list[str] = field(default_factory=list)
    pending: str = ""

    @property
    def text(self) -> str:
        return "\n\n".join([*self.messages, self.pending] if self.pending else self.messages)

    def add(self, event: Event) -> bool:
        """Take one event of the turn; whether the text changed."""
        if event.author == "user" or event.content is None or not event.content.parts:
            return False
        text = "".join(p.text for p in event.content.parts if p.text and not p.thought)
        if event.partial:
            self.pending += text
            return bool(text)
        had_pending, self.pending = bool(self.pending), ""
        if text:
            self.messages.append(text)
        return bool(text) or had_pending

    def drop_pending(self) -> None:
        """Forget text streamed for a message that was never stored."""
        self.pending = ""
