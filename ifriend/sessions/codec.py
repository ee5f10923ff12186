"""Events and state values to and from the bytes the stores keep."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from google.adk.events.event import Event

from .trusted import builder_for

_build_event = builder_for(Event)


def encode_event(event: Event) -> bytes:
    """The event as compact JSON (what Redis lists and MySQL rows hold).

    Keys are the models' aliases (camelCase, as ADK's API server writes them):
    some nested models (auth schemes) only round-trip through their aliases.
    Fields that are None are left out.
    """
    return event.model_dump_json(exclude_none=True, by_alias=True).encode()


def decode_event(payload: bytes | str) -> Event:
    return _build_event(json.loads(payload))


def decode_events(payloads: Sequence[bytes | str]) -> list[Event]:
    """Parse many stored events at once (one JSON parse, no re-validation)."""
    if not payloads:
        return []
    joined = b",".join(p.encode() if isinstance(p, str) else p for p in payloads)
    return [_build_event(data) for data in json.loads(b"[" + joined + b"]")]


def encode_value(value: Any) -> str:
    """A state value as JSON text (already validated as plain JSON)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def decode_value(text: str | bytes) -> Any:
    return json.loads(text)
