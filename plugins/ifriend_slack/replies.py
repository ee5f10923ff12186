"""Posting one answer: the first words at once, then throttled `chat.update`s, split when long.

Slack calls run in a task of their own, so a slow Web API never holds up the turn (the model's
stream and the session appends): `show()` only records the newest text, and the task renders
whatever is newest whenever the previous call has returned and the interval has passed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .formatting import markdown_to_mrkdwn, split_message

EMPTY_ANSWER = "_(no answer)_"


class ReplyStream:
    """Shows a growing answer in Slack.

    `show(text)` takes the answer so far (Markdown, accumulated) and returns at once; the
    first text is posted as soon as it comes, later texts update the posted messages at most
    once per `interval` seconds. `finish(text)` shows the final text without waiting for the
    interval and returns once Slack has it (raising what the Web API raised). An answer longer
    than `limit` characters (after conversion) is split over several messages, each edited in
    place as the answer grows.
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
        self._latest: str | None = None
        self._rendered: str | None = None
        self._last_sent = float("-inf")
        self._wake = asyncio.Event()
        self._finished = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def show(self, markdown: str) -> None:
        if not markdown.strip() or self._finished.is_set():
            return
        self._latest = markdown
        self._start()

    async def finish(self, markdown: str | None = None) -> None:
        if markdown is not None and markdown.strip():
            self._latest = markdown
        self._finished.set()
        self._start()
        assert self._task is not None
        await self._task

    async def abort(self) -> None:
        """Stop rendering (the turn failed); what was posted stays."""
        self._finished.set()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            delay = self._last_sent + self.interval - self.clock()
            if self.posted and delay > 0 and not self._finished.is_set():
                try:  # wait out the interval, unless the answer is finished meanwhile
                    await asyncio.wait_for(self._finished.wait(), delay)
                except TimeoutError:
                    pass
            text = self._latest
            if self._finished.is_set():
                if text is None and not self.posted:
                    text = EMPTY_ANSWER
                if text is not None and text != self._rendered:
                    await self._render(text)
                return
            if text is not None and text != self._rendered:
                await self._render(text)

    async def _render(self, markdown: str) -> None:
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
        self._rendered = markdown
        self._last_sent = self.clock()
