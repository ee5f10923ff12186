"""Events and `MemoryEntry` objects to and from the records stores keep."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from google.adk.events.event import Event
from google.adk.memory import _utils
from google.adk.memory.memory_entry import MemoryEntry
from google.genai import types

from ..errors import EventTooLargeError, InvalidEventError
from ..sessions.validation import SessionLimits, validate_id
from .store import MemoryHit, MemoryRecord
from .text import analyze, event_text


def _payload(
    content: types.Content,
    author: str | None,
    timestamp: str | None,
    custom_metadata: Mapping[str, Any] | None,
    memory_id: str,
) -> bytes:
    data: dict[str, Any] = {
        "content": content.model_dump(mode="json", exclude_none=True, by_alias=True),
        "author": author,
        "timestamp": timestamp,
    }
    if custom_metadata:
        data["custom_metadata"] = dict(custom_metadata)
    try:
        return orjson.dumps(data)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise InvalidEventError(
            f"memory {memory_id} cannot be stored as JSON ({type(exc).__name__})"
        ) from None


def _record(
    memory_id: str,
    timestamp: float,
    payload: bytes,
    text: str,
    author: str | None,
    max_bytes: int,
) -> MemoryRecord | None:
    analysis = analyze(text)
    if analysis is None:
        return None
    if len(payload) > max_bytes:
        raise EventTooLargeError(
            f"memory {memory_id} is {len(payload)} bytes as JSON; the limit is {max_bytes}"
        )
    return MemoryRecord(
        memory_id=memory_id,
        timestamp=timestamp,
        payload=payload,
        text=text,
        terms=analysis.terms,
        author=author,
        text_lower=analysis.text_lower,
        extras=analysis.extras,
    )


def record_of_event(event: Event, limits: SessionLimits, max_bytes: int) -> MemoryRecord | None:
    """The record of one event, or None when it has no text to find it by."""
    text = event_text(event.content)
    if not text:
        return None
    validate_id("event id", event.id, limits)
    assert event.content is not None
    payload = _payload(event.content, event.author, None, None, event.id)
    return _record(event.id, float(event.timestamp), payload, text, event.author, max_bytes)


def record_of_entry(
    entry: MemoryEntry, memory_id: str, limits: SessionLimits, max_bytes: int
) -> MemoryRecord | None:
    """The record of one explicit memory (`add_memory`), or None without text."""
    validate_id("memory id", memory_id, limits)
    text = event_text(entry.content)
    if not text:
        return None
    payload = _payload(
        entry.content, entry.author, entry.timestamp, entry.custom_metadata, memory_id
    )
    return _record(
        memory_id, parse_timestamp(entry.timestamp), payload, text, entry.author, max_bytes
    )


def parse_timestamp(value: str | None) -> float:
    """Seconds since the epoch of an ISO 8601 time (naive: local, as ADK writes them); now if none."""
    if value:
        try:
            seconds = datetime.fromisoformat(value).timestamp()
        except (ValueError, OverflowError, OSError):
            pass
        else:
            if math.isfinite(seconds):
                return seconds
    return time.time()


def entry_of_hit(hit: MemoryHit) -> MemoryEntry:
    """The ADK `MemoryEntry` a search returns (timestamps formatted as ADK does)."""
    data = orjson.loads(hit.payload)
    timestamp = data.get("timestamp") or _utils.format_timestamp(hit.timestamp)
    return MemoryEntry(
        id=hit.memory_id,
        content=types.Content.model_validate(data["content"]),
        author=data.get("author"),
        timestamp=timestamp,
        custom_metadata=data.get("custom_metadata") or {},
    )
