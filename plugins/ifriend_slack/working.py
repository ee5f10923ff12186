"""What shows the bot is on it while a turn runs.

The thread's status (`assistant.threads.setStatus`, with `loading_messages` rotating) where
Slack allows it: the answer goes in a thread and the workspace has not refused it lately.
Slack clears the status when the answer is posted. Otherwise, or when the call fails, a
reaction (`working_reaction`) on the post, removed once the turn is over.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from .events import Post
from .fallbacks import Fallbacks
from .settings import SlackSettings

log = logging.getLogger("ifriend_slack")

STATUS = "status"

Shown = Literal["status", "reaction"] | None


@dataclass
class Working:
    client: Any
    post: Post
    settings: SlackSettings
    fallbacks: Fallbacks
    _showing: asyncio.Task[Shown] | None = field(default=None, init=False)

    def begin(self) -> None:
        """Show it (in the background)."""
        if self._status_allowed() or self.settings.working_reaction:
            self._showing = asyncio.get_running_loop().create_task(self._show())

    def _status_allowed(self) -> bool:
        post = self.post
        return (
            self.settings.assistant_status
            and post.reply_thread_ts is not None
            and not self.fallbacks.refused(STATUS, post.team, post.kind)
        )

    async def _show(self) -> Shown:
        if self._status_allowed() and await self._status():
            return "status"
        if self.settings.working_reaction and await self._react():
            return "reaction"
        return None

    async def _status(self) -> bool:
        s, post = self.settings, self.post
        try:
            await self.client.assistant_threads_setStatus(
                channel_id=post.channel,
                thread_ts=post.reply_thread_ts,
                status=s.status_text,
                loading_messages=list(s.loading_messages) or None,
            )
            return True
        except Exception as exc:
            self.fallbacks.note(STATUS, post.team, post.kind, exc)
            log.debug("could not set the thread status: %s", type(exc).__name__)
            return False

    async def _react(self) -> bool:
        try:
            await self.client.reactions_add(
                channel=self.post.channel, timestamp=self.post.ts, name=self.settings.working_reaction
            )
            return True
        except Exception as exc:
            log.debug("could not add the working reaction: %s", type(exc).__name__)
            return False

    async def end(self) -> None:
        """The turn is over: take the reaction back (Slack clears the status itself)."""
        if self._showing is None or await self._showing != "reaction":
            return
        try:
            await self.client.reactions_remove(
                channel=self.post.channel, timestamp=self.post.ts, name=self.settings.working_reaction
            )
        except Exception as exc:
            log.debug("could not remove the working reaction: %s", type(exc).__name__)
