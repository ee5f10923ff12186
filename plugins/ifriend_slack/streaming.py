"""Streaming one answer natively: `chat.startStream`, `chat.appendStream`*, `chat.stopStream`.

Slack streams a message into a thread only (DMs in the agent view are threads; a channel
stream names its recipient, the user who asked). The answer is sent as Markdown, as the
model wrote it: Slack renders it, with no lossy conversion to mrkdwn.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from .formatting import cut_point
from .replies import EMPTY_ANSWER, PacedReply, ReplyStream

log = logging.getLogger("ifriend_slack")

APPEND_CHARS = 12_000  # Slack's limit for one call's markdown_text
FENCE = "```"


class Rewritten(Exception):
    """The answer no longer extends what was streamed (a turn retried after a race)."""


class NativeStream(PacedReply):
    """Shows a growing Markdown answer as Slack streamed messages (`PacedReply`'s contract).

    The first text starts a stream, later text is appended, and the final call stops it with
    the `blocks` under it. An answer longer than `limit` characters goes on in a new streamed
    message, cut at a paragraph, line or space, code blocks closed and reopened across the
    cut. When Slack refuses to start a stream (`on_refused` is told), a call fails half-way, or
    the answer is rewritten, the rest is shown by `fallback(ts list)`: a `ReplyStream` that
    edits the messages already streamed and posts the others.
    """

    def __init__(
        self,
        client: Any,
        *,
        channel: str,
        thread_ts: str,
        team: str,
        user: str,
        limit: int,
        interval: float,
        fallback: Callable[[list[str]], ReplyStream],
        on_refused: Callable[[BaseException], None] = lambda exc: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(interval=interval, clock=clock)
        self.client = client
        self.target = {
            "channel": channel,
            "thread_ts": thread_ts,
            "recipient_team_id": team,
            "recipient_user_id": user,
        }
        self.limit = limit
        self.fallback = fallback
        self.on_refused = on_refused
        self.messages: list[str] = []  # ts of every message streamed, oldest first
        self.replaced_by: ReplyStream | None = None
        self._stream: Any = None  # slack_sdk's AsyncChatStream of the current message
        self._offset = 0  # where the current message's part of the answer starts
        self._sent = 0  # characters of that part sent
        self._reopen = ""  # a code fence to reopen at the start of the next message
        self._streamed = ""  # the answer up to what was sent

    @property
    def _shown(self) -> bool:
        return bool(self.messages)

    async def _render(self, markdown: str | None, *, final: bool) -> bool:
        text = EMPTY_ANSWER if markdown is None and final else markdown
        if text is None:
            return False
        if self.replaced_by is None:
            try:
                await self._send(text, final=final)
                return True
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._fall_back(exc)
        assert self.replaced_by is not None
        if final:
            await self.replaced_by.finish(text, blocks=self._blocks)
        else:
            await self.replaced_by.show(text)
        return True

    async def _aborted(self) -> None:
        """The turn failed: close the stream (or stop the fallback); what was shown stays."""
        if self.replaced_by is not None:
            await self.replaced_by.abort()
            return
        stream, self._stream = self._stream, None
        if stream is not None and stream.ts:
            try:
                await stream.stop()
            except Exception as exc:
                log.debug("could not stop the stream of a failed turn: %s", type(exc).__name__)

    async def _send(self, text: str, *, final: bool) -> None:
        if not text.startswith(self._streamed):
            raise Rewritten()
        while True:
            part = text[self._offset :]
            room = self.limit - len(self._reopen)
            cut = cut_point(part, room - len(FENCE) - 1) if len(part) > room else len(part)
            cut = max(cut, self._sent)
            rest = part[cut:]
            if not rest.strip():  # it all fits (trailing blanks aside)
                await self._append(part[self._sent :])
                break
            piece = part[:cut]
            await self._append(piece[self._sent :])
            if (self._reopen + piece).count(FENCE) % 2:
                await self._append_raw("\n" + FENCE)
                self._reopen = FENCE + "\n"
            else:
                self._reopen = ""
            await self._stop(blocks=None)
            skip = 2 if rest.startswith("\n\n") else 1 if rest[:1] in ("\n", " ") else 0
            self._offset += cut + skip
            self._sent = 0
            self._streamed = text[: self._offset]
        if final:
            await self._stop(blocks=self._blocks)

    async def _append(self, markdown: str) -> None:
        if not markdown:
            return
        await self._append_raw(markdown)
        self._sent += len(markdown)
        self._streamed = self._streamed + markdown

    async def _append_raw(self, markdown: str) -> None:
        if self._stream is None:
            self._stream = await self.client.chat_stream(buffer_size=1, **self.target)
            markdown = self._reopen + markdown
        for i in range(0, len(markdown), APPEND_CHARS):
            await self._stream.append(markdown_text=markdown[i : i + APPEND_CHARS])
            self._note(self._stream)

    async def _stop(self, *, blocks: list[dict[str, Any]] | None) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            if not blocks:
                return
            stream = await self.client.chat_stream(buffer_size=1, **self.target)
        await stream.stop(blocks=blocks or None)
        self._note(stream)

    def _note(self, stream: Any) -> None:
        if stream.ts and (not self.messages or self.messages[-1] != stream.ts):
            self.messages.append(stream.ts)

    async def _fall_back(self, exc: BaseException) -> None:
        if not self.messages and not isinstance(exc, Rewritten):
            self.on_refused(exc)
        log.info("native streaming unavailable (%s); posting and updating instead", _describe(exc))
        stream, self._stream = self._stream, None
        if stream is not None and stream.ts:
            try:  # a message still streaming cannot be edited
                await stream.stop()
            except Exception:
                pass
        self.replaced_by = self.fallback(list(self.messages))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, Rewritten):
        return "the answer was rewritten"
    response = getattr(exc, "response", None)
    error = response.get("error") if response is not None and hasattr(response, "get") else None
    return f"{type(exc).__name__}: {error}" if error else type(exc).__name__
