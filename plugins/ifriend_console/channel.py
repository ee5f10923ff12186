"""`ConsoleChannel`: one person chatting with the agent in a terminal (or through a pipe)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from contextlib import aclosing

import click

from ifriend.plugin_api import ChannelContext, Conversations, describe_agent, telemetry

from .lines import Lines, PromptLines, StreamLines
from .settings import ConsoleSettings
from .state import LastSessions

logger = logging.getLogger(__name__)

HELP = """\
/new            start a new session
/sessions       list your sessions (* marks the current one)
/switch ID      continue session ID
/quit           leave (Ctrl-D does too)"""


class ConsoleChannel:
    """Reads lines, runs each as a turn, prints the reply as it streams in.

    The session continues where the user left off: its id is remembered next
    to the history file, so a durable backend keeps the conversation.
    """

    def __init__(
        self,
        context: ChannelContext,
        settings: ConsoleSettings,
        *,
        lines: Lines | None = None,
        write: Callable[[str], None] | None = None,
    ) -> None:
        self.context = context
        self.settings = settings
        self.user_id = settings.user()
        self.session_id: str | None = None
        self.last_sessions = LastSessions(settings.state_path())
        self._lines = lines
        self._write = write or (lambda text: click.echo(text, nl=False))

    @property
    def conversations(self) -> Conversations:
        return self.context.app.conversations

    async def serve(self) -> None:
        """Chat until /quit or the end of input."""
        lines = self._lines or self._default_lines()
        self.session_id = await self._first_session()
        self._say(
            f"ifriend chat with {describe_agent(self.context.app.agent)}; user {self.user_id}, "
            f"session {self.session_id}. /help lists the commands."
        )
        while (line := await lines.read()) is not None:
            line = line.strip()
            if not line:
                continue
            if line.startswith("/"):
                if not await self.command(line):
                    break
            else:
                await self.turn(line)

    async def close(self) -> None:
        """Nothing to release: the App owns the conversations."""

    def _default_lines(self) -> Lines:
        if sys.stdin.isatty() and sys.stdout.isatty():
            return PromptLines(self.settings.history_path())
        return StreamLines(sys.stdin)

    async def _first_session(self) -> str:
        app_name = self.conversations.app_name
        remembered = self.last_sessions.get(app_name, self.user_id)
        if remembered:
            return remembered
        existing = await self.conversations.list_sessions(user_id=self.user_id)
        session_id = existing[-1] if existing else await self.conversations.new_session_id(
            user_id=self.user_id
        )
        self._use(session_id)
        return session_id

    def _use(self, session_id: str) -> None:
        self.session_id = session_id
        self.last_sessions.remember(self.conversations.app_name, self.user_id, session_id)

    async def turn(self, text: str) -> None:
        """Run one turn and print its reply as it grows; a failure prints an apology."""
        with telemetry.turn("console", user_id=self.user_id):  # ADK's and the session spans nest in it
            await self._turn(text)

    async def _turn(self, text: str) -> None:
        assert self.session_id is not None
        shown = ""
        try:
            replies = self.conversations.turn(user_id=self.user_id, session_id=self.session_id, text=text)
            async with aclosing(replies):
                async for reply in replies:
                    if reply.text.startswith(shown):
                        self._write(reply.text[len(shown) :])
                    else:  # the turn was run again: show the new reply whole
                        self._write("\n" + reply.text)
                    shown = reply.text
        except Exception as exc:
            telemetry.turn_failed(exc)
            logger.error("the console turn failed", exc_info=True)
            self._write("\n" if shown else "")
            self._say(f"Sorry, something went wrong ({type(exc).__name__}); the details are logged.")
            return
        self._write("\n" if shown else "(no reply)\n")

    async def command(self, line: str) -> bool:
        """Run a /command; False when the chat should end."""
        name, _, argument = line.partition(" ")
        argument = argument.strip()
        if name in ("/quit", "/exit"):
            return False
        if name == "/new":
            self._use(await self.conversations.new_session_id(user_id=self.user_id))
            self._say(f"New session {self.session_id}.")
        elif name == "/sessions":
            await self._list_sessions()
        elif name == "/switch" and argument:
            self._use(argument)
            self._say(f"Session {argument}.")
        elif name == "/help":
            self._say(HELP)
        else:
            self._say(f"Unknown command {line!r}.\n{HELP}")
        return True

    async def _list_sessions(self) -> None:
        ids = await self.conversations.list_sessions(user_id=self.user_id)
        if self.session_id not in ids:
            ids.append(f"{self.session_id}")
        rows = [f"{'*' if i == self.session_id else ' '} {i}" for i in ids]
        self._say("Your sessions, least recently used first:\n" + "\n".join(rows))

    def _say(self, text: str) -> None:
        self._write(text + "\n")
