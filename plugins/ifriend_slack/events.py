"""Slack events -> the posts the bot answers, and how a post maps to a conversation.

- A thread is a session: `slack:{team}:{channel}:{thread root ts}`; a mention at the top of a
  channel starts a thread rooted at that post.
- A DM outside a thread continues the DM's current session (`slack:{team}:{channel}:dm`,
  or the one `new` started); a thread inside a DM is a session of its own.
- The user id is the Slack user who wrote the post.
- Files shared with the post are described (`SharedFile`), not downloaded here.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from .formatting import mentions, slack_to_text

# Message subtypes that are people writing; every other subtype (edits, deletions, joins,
# bot_message...) is not a post to answer.
ANSWERABLE_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})
NO_TEXT = "(a message without text)"
NEW_SESSION_WORDS = frozenset({"new", "!new", "/new", "new session", "reset"})

# `time.monotonic()` when the request carrying the event arrived, and when bolt had acked it
# (set by the transport and the listener; the turn's tasks inherit them).
RECEIVED: ContextVar[float | None] = ContextVar("ifriend_slack_received", default=None)
ACKED: ContextVar[float | None] = ContextVar("ifriend_slack_acked", default=None)


@dataclass(frozen=True, slots=True)
class SharedFile:
    """A file as a message event describes it."""

    id: str
    name: str
    mimetype: str
    size: int | None
    url: str | None  # url_private_download
    needs_info: bool = False  # Slack sent only the id: ask files.info for the rest

    @classmethod
    def parse(cls, file: Mapping[str, Any]) -> SharedFile | None:
        file_id = file.get("id")
        if not isinstance(file_id, str) or not file_id:
            return None
        size = file.get("size")
        return cls(
            id=file_id,
            name=str(file.get("name") or file.get("title") or file_id),
            mimetype=str(file.get("mimetype") or "application/octet-stream").lower(),
            size=size if isinstance(size, int) and size >= 0 else None,
            url=file.get("url_private_download") or file.get("url_private") or None,
            needs_info=file.get("file_access") == "check_file_info",
        )


@dataclass(frozen=True, slots=True)
class Post:
    """One message a person wrote that may be for the bot."""

    team: str
    channel: str
    user: str
    ts: str
    thread_ts: str | None
    text: str
    mentioned: bool
    direct: bool
    event_id: str | None = None
    retry_num: int | None = None
    files: tuple[SharedFile, ...] = ()
    user_team: str | None = None  # the writer's own team, in a channel shared across teams

    @property
    def post_key(self) -> str:
        """Names the post whatever event carried it (dedupe key)."""
        return f"{self.team}:{self.channel}:{self.ts}"

    @property
    def in_thread(self) -> bool:
        return self.thread_ts is not None

    @property
    def kind(self) -> str:
        """"im" for a DM, "channel" otherwise (Slack's features differ between the two)."""
        return "im" if self.direct else "channel"

    @property
    def conversation_key(self) -> str:
        """Posts with the same key are answered one at a time, in arrival order."""
        where = self.thread_ts or ("dm" if self.direct else self.ts)
        return f"{self.team}:{self.channel}:{where}:{self.user}"

    @property
    def thread_session_id(self) -> str:
        """The session of the thread this post is in (or starts)."""
        return f"slack:{self.team}:{self.channel}:{self.thread_ts or self.ts}"

    @property
    def dm_prefix(self) -> str:
        return f"slack:{self.team}:{self.channel}:dm"

    @property
    def reply_thread_ts(self) -> str | None:
        """Where to answer: the thread; a DM outside a thread is answered in the DM itself."""
        if self.thread_ts is not None:
            return self.thread_ts
        return None if self.direct else self.ts

    @property
    def asks_for_new_session(self) -> bool:
        return self.direct and not self.in_thread and self.text.strip().lower() in NEW_SESSION_WORDS


def is_from_bot(event: Mapping[str, Any]) -> bool:
    """Any bot's message, this one's included: never answered (no bot loops)."""
    return bool(event.get("bot_id") or event.get("bot_profile")) or event.get("subtype") == "bot_message"


def parse_post(
    body: Mapping[str, Any],
    *,
    bot_user_id: str | None,
    team_id: str | None = None,
    retry_num: int | None = None,
) -> Post | None:
    """The post an Events API body carries, or None if it is nothing to answer."""
    event = body.get("event")
    if not isinstance(event, Mapping):
        return None
    kind = event.get("type")
    if kind not in ("app_mention", "message") or is_from_bot(event):
        return None
    if event.get("subtype") not in ANSWERABLE_SUBTYPES or event.get("hidden"):
        return None
    user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
    if not (isinstance(user, str) and isinstance(channel, str) and isinstance(ts, str)):
        return None
    if bot_user_id and user == bot_user_id:
        return None
    team = event.get("team") or body.get("team_id") or team_id or "T"
    raw = event.get("text") or ""
    direct = event.get("channel_type") == "im" or (kind == "message" and channel.startswith("D"))
    mentioned = kind == "app_mention" or mentions(raw, bot_user_id)
    files = tuple(f for f in map(SharedFile.parse, _mappings(event.get("files"))) if f is not None)
    text = slack_to_text(raw, bot_user_id=bot_user_id) or slack_to_text(raw) or ("" if files else NO_TEXT)
    thread_ts = event.get("thread_ts")
    return Post(
        team=str(team),
        channel=channel,
        user=user,
        ts=ts,
        thread_ts=thread_ts if isinstance(thread_ts, str) and thread_ts else None,
        text=text,
        mentioned=mentioned,
        direct=direct and kind == "message",
        event_id=body.get("event_id"),
        retry_num=retry_num,
        files=files,
        user_team=event.get("user_team") if isinstance(event.get("user_team"), str) else None,
    )


def _mappings(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []
