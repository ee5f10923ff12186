"""Events and state values to and from the bytes the stores keep."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from google.adk.events.event import Event
from pydantic import TypeAdapter

_EVENTS = TypeAdapter(list[Event])


def encode_event(event: Event) -> bytes:
    """The event as compact JSON (what Redis lists and MySQL rows hold)."""
    return event.model_dump_json(exclude_none=True).encode()


def decode_events(payloads: Sequence[bytes | str]) -> list[Event]:
    """Parse many stored events at once."""
    if not payloads:
        return []
    joined = b",".join(p.encode() if isinstance(p, str) else p for p in payloads)
    return _EVENTS.validate_json(b"[" + joined + b"]")


def encode_value(value: Any) -> str:
    """A state value as JSON text (already validated as plain JSON)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def decode_value(text: str | bytes) -> Any:
    return json.loads(text)
