"""Posting one answer: the first words at once, then throttled `chat.update`s, split when long.

The path where Slack does not stream natively (a DM outside a thread, a workspace that
refuses `chat.startStream`, `streaming = false`), and where a native stream that failed
half-way is finished. Slack calls run in a task of their own, so a slow Web API never holds
up the turn (the model's stream and the session appends): `show()` only records the newest
text, and the task renders whatever is newest whenever the previous call has returned and
the interval has passed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from .formatting import markdown_to_mrkdwn, mrkdwn_sections, split_message

EMPTY_ANSWER = "_(no answer)_"


class PacedReply:
    """A growing answer shown in Slack by a task of its own.

    `show(text)` takes the answer so far (Markdown, accumulated) and returns at once; the task
    shows the first text as soon as it comes, later texts at most once per `interval` seconds
    (texts arriving meanwhile are coalesced). `finish(text, blocks=...)` shows the final text
    without waiting for the interval, with `blocks` under it, and returns once Slack has it
    (raising what the Web API raised). `abort()` stops (the turn failed); what was shown stays.
    Subclasses say how text is shown (`_render`) and whether any is yet (`_shown`).
    """

    def __init__(self, *, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._blocks: list[dict[str, Any]] = []
        self._latest: str | None = None
        self._last_sent = float("-inf")
        self._wake = asyncio.Event()
        self._finished = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def show(self, markdown: str) -> None:
        if not markdown.strip() or self._finished.is_set():
            return
        self._latest = markdown
        self._start()

    async def finish(self, markdown: str | None = None, *, blocks: list[dict[str, Any]] | None = None) -> None:
        if markdown is not None and markdown.strip():
            self._latest = markdown
        self._blocks = blocks or []
        self._finished.set()
        self._start()
        assert self._task is not None
        await self._task

    async def abort(self) -> None:
        self._finished.set()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        await self._aborted()

    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            delay = self._last_sent + self.interval - self.clock()
            if self._shown and delay > 0 and not self._finished.is_set():
                try:  # wait out the interval, unless the answer is finished meanwhile
                    await asyncio.wait_for(self._finished.wait(), delay)
                except TimeoutError:
                    pass
            final = self._finished.is_set()
            if await self._render(self._latest, final=final):
                self._last_sent = self.clock()
            if final:
                return

    @property
    def _shown(self) -> bool:
        raise NotImplementedError

    async def _render(self, markdown: str | None, *, final: bool) -> bool:
        """Show `markdown` (None: nothing yet), with `self._blocks` if `final`; whether Slack
        was called."""
        raise NotImplementedError

    async def _aborted(self) -> None:
        """Tidy up after `abort()` stopped the task."""


class ReplyStream(PacedReply):
    """Shows a growing answer by posting it, then editing it (`PacedReply`'s contract).

    The first text is posted, later texts update the posted messages. With final `blocks` the
    last message's text also goes in section blocks above them. An answer longer than `limit`
    characters (after conversion to mrkdwn) is split over several messages, each edited in
    place as the answer grows; `posted` (message timestamps) are edited first.
    """

    def __init__(
        self,
        client: Any,
        *,
        channel: str,
        thread_ts: str | None,
        limit: int,
        interval: float,
        posted: Sequence[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(interval=interval, clock=clock)
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.limit = limit
        self.posted: list[tuple[str, str | None]] = [(ts, None) for ts in posted]  # (ts, text shown)
        self._rendered: str | None = None

    @property
    def _shown(self) -> bool:
        return bool(self.posted)

    async def _render(self, markdown: str | None, *, final: bool) -> bool:
        if final and markdown is None and self._rendered is None:
            markdown = EMPTY_ANSWER
        if markdown is None or (markdown == self._rendered and not (final and self._blocks)):
            return False
        pieces = split_message(markdown_to_mrkdwn(markdown), self.limit)
        for i, piece in enumerate(pieces):
            content: dict[str, Any] = {"text": piece}
            with_blocks = final and self._blocks and i == len(pieces) - 1
            if with_blocks:
                content["blocks"] = [*mrkdwn_sections(piece), *self._blocks]
            if i < len(self.posted):
                ts, shown = self.posted[i]
                if shown != piece or with_blocks:
                    await self.client.chat_update(channel=self.channel, ts=ts, **content)
                    self.posted[i] = (ts, piece)
            else:
                response = await self.client.chat_postMessage(
                    channel=self.channel, thread_ts=self.thread_ts, **content
                )
                self.posted.append((response["ts"], piece))
        self._rendered = markdown
        return True
