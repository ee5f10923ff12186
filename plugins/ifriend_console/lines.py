"""Where the console's lines come from: prompt_toolkit on a terminal, plain reads otherwise."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any, Protocol, TextIO

logger = logging.getLogger(__name__)

PROMPT = "you> "


class Lines(Protocol):
    async def read(self) -> str | None:
        """The next line without its newline; `None` at the end of input."""
        ...


class PromptLines:
    """A prompt_toolkit prompt with line editing and a persistent history file.

    Ctrl-D and Ctrl-C at the prompt end the input.
    """

    def __init__(self, history: Path | None, **session_options: Any) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory

        store: Any = InMemoryHistory()
        if history is not None:
            try:
                history.parent.mkdir(parents=True, exist_ok=True)
                history.touch()
                store = FileHistory(str(history))
            except OSError as exc:
                logger.warning("no history file (%s): %s", history, exc)
        self.session: Any = PromptSession(history=store, **session_options)

    async def read(self) -> str | None:
        try:
            return await self.session.prompt_async(PROMPT)
        except (EOFError, KeyboardInterrupt):
            return None


class StreamLines:
    """Lines of a stream that is not a terminal (a pipe, a file, a test's input).

    A daemon thread reads them, so a blocked read never keeps the process alive.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._queue: asyncio.Queue[str | None] | None = None

    async def read(self) -> str | None:
        if self._queue is None:
            self._queue = asyncio.Queue()
            loop = asyncio.get_running_loop()
            thread = threading.Thread(
                target=self._pump, args=(loop, self._queue), name="ifriend-console-stdin",
                daemon=True,
            )
            thread.start()
        line = await self._queue.get()
        if line is None:
            self._queue.put_nowait(None)  # stay at the end for later reads
            return None
        return line.rstrip("\r\n")

    def _pump(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
        try:
            while True:
                line = self.stream.readline()
                if not line:
                    break
                loop.call_soon_threadsafe(queue.put_nowait, line)
        except (OSError, ValueError) as exc:  # closed or unreadable stream: treat as the end
            logger.debug("console input ended: %s", exc)
        finally:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, None)
            except RuntimeError:  # the loop is gone
                pass
