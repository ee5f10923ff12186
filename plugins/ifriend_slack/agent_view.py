"""The agent view (Slack's AI-app container): suggested prompts and thread titles.

- Suggested prompts (`suggested_prompts`) are set when a user opens the app's messages tab
  (`app_home_opened`, tab `messages`) and when a new assistant thread starts
  (`assistant_thread_started`).
- A DM thread's title (`assistant.threads.setTitle`) is its first message, shortened.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .settings import SlackSettings

log = logging.getLogger("ifriend_slack")

TITLE_CHARS = 60


def title_for(text: str, limit: int = TITLE_CHARS) -> str:
    """A thread title from its first message: one line, at most `limit` characters, cut at a word."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    cut = line.rfind(" ", 0, limit - 1)
    return line[: cut if cut >= limit // 2 else limit - 1].rstrip(" ,.;:") + "…"


async def suggest_prompts(client: Any, settings: SlackSettings, *, channel: str, thread_ts: str | None = None) -> None:
    """Offer `suggested_prompts` in a DM (its top level, or one thread); errors are logged."""
    if not settings.suggested_prompts:
        return
    prompts = [{"title": p.title, "message": p.message} for p in settings.suggested_prompts]
    try:
        await client.assistant_threads_setSuggestedPrompts(
            channel_id=channel, thread_ts=thread_ts, title=settings.suggested_prompts_title, prompts=prompts
        )
    except Exception as exc:
        log.warning("could not set the suggested prompts: %s", type(exc).__name__)


def started_thread(event: Mapping[str, Any]) -> tuple[str, str] | None:
    """(channel, thread_ts) of an `assistant_thread_started` event."""
    thread = event.get("assistant_thread") or {}
    channel, thread_ts = thread.get("channel_id"), thread.get("thread_ts")
    if isinstance(channel, str) and isinstance(thread_ts, str) and channel and thread_ts:
        return channel, thread_ts
    return None


async def set_title(client: Any, *, channel: str, thread_ts: str, text: str) -> None:
    """Name a DM thread after its first message; errors are logged, never raised."""
    title = title_for(text)
    if not title:
        return
    try:
        await client.assistant_threads_setTitle(channel_id=channel, thread_ts=thread_ts, title=title)
    except Exception as exc:
        log.debug("could not set the thread title: %s", type(exc).__name__)
