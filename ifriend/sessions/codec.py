"""Events and state values to and from the bytes the stores keep."""

from __future__ import annotations

import gc
import json
from collections.abc import Sequence
from typing import Any

import orjson
from google.adk.events.event import Event

from .fast_events import builder_for

_build_event = builder_for(Event)


def encode_event(event: Event) -> bytes:
    """The event as compact JSON (what Redis lists and MySQL rows hold).

    Keys are the models' aliases (camelCase, as ADK's API server writes them):
    some nested models (auth schemes) only round-trip through their aliases.
    Fields that are None are left out.
    """
    return event.model_dump_json(exclude_none=True, by_alias=True).encode()


def _loads(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:  # e.g. an integer beyond 64 bits, which json accepts
        return json.loads(data)


def decode_event(payload: bytes | str) -> Event:
    return _build_event(_loads(payload))


def decode_events(payloads: Sequence[bytes | str]) -> list[Event]:
    """Parse many stored events at once (one JSON parse, no re-validation).

    The cyclic garbage collector is paused meanwhile: the objects made are not
    cyclic garbage, and collections triggered by thousands of allocations would
    each scan every object of a warm cache (the p99 of a cold read).
    """
    if not payloads:
        return []
    joined = b",".join(p.encode() if isinstance(p, str) else p for p in payloads)
    collecting = gc.isenabled()
    gc.disable()
    try:
        return [_build_event(data) for data in _loads(b"[" + joined + b"]")]
    finally:
        if collecting:
            gc.enable()


def encode_value(value: Any) -> str:
    """A state value as JSON text (already validated as plain JSON)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def decode_value(text: str | bytes) -> Any:
    return json.loads(text)
