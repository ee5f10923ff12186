"""Posting one answer: the first words at once, then throttled `chat.update`s, split when long."""

from __future__ import annotations

import time
from typing import Any

from .formatting import markdown_to_mrkdwn, split_message

EMPTY_ANSWER = "_(no answer)_"


class ReplyStream:
    """Shows a growing answer in Slack.

    `show(text)` takes the answer so far (Markdown, accumulated); the first call posts it,
    later calls update the posted messages at most once per `interval` seconds; `finish(text)`
    always shows the final text. An answer longer than `limit` characters (after conversion)
    is split over several messages, each edited in place as the answer grows.
    """

    def __init__(
        self,
        client: Any,
        *,
        channel: str,
        thread_ts: str | None,
        limit: int,
        interval: float,
        clock: Any = time.monotonic,
    ) -> None:
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.limit = limit
        self.interval = interval
        self.clock = clock
        self.posted: list[tuple[str, str]] = []  # (ts, text shown) per message
        self._last_sent = float("-inf")
        self._pending: str | None = None

    async def show(self, markdown: str) -> None:
        if not markdown.strip():
            return
        if self.posted and self.clock() - self._last_sent < self.interval:
            self._pending = markdown
            return
        await self._render(markdown)

    async def finish(self, markdown: str | None = None) -> None:
        text = markdown if markdown is not None else self._pending
        if text is None or not text.strip():
            text = EMPTY_ANSWER if not self.posted else None
        if text is not None:
            await self._render(text)
        self._pending = None

    async def _render(self, markdown: str) -> None:
        self._pending = None
        pieces = split_message(markdown_to_mrkdwn(markdown), self.limit)
        for i, piece in enumerate(pieces):
            if i < len(self.posted):
                ts, shown = self.posted[i]
                if shown != piece:
                    await self.client.chat_update(channel=self.channel, ts=ts, text=piece)
                    self.posted[i] = (ts, piece)
            else:
                response = await self.client.chat_postMessage(
                    channel=self.channel, thread_ts=self.thread_ts, text=piece
                )
                self.posted.append((response["ts"], piece))
        self._last_sent = self.clock()
