"""Checks run on every write before anything reaches a store."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from ..errors import (
    EventTooLargeError,
    InvalidEventError,
    InvalidIdError,
    InvalidQueryError,
    InvalidStateError,
    StateTooLargeError,
)

_FORBIDDEN_ID_CHARS = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")

# Lists and objects nested in one state value. MariaDB refuses JSON documents deeper than
# 32 levels, and a state value sits one level down in its column: 20 leaves room.
MAX_STATE_DEPTH = 20
# `num_recent_events` above this reads every event (no session holds that many).
MAX_RECENT_EVENTS = 2**31 - 1


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """Bounds on what one write may carry."""

    max_id_length: int = 128
    max_event_bytes: int = 1_048_576
    max_state_value_bytes: int = 262_144


def validate_id(kind: str, value: object, limits: SessionLimits) -> str:
    """Return `value` if it is a usable id, else raise `InvalidIdError`.

    Ids may hold any printable character (stores encode them for their keys);
    control characters, surrogates (not encodable as UTF-8), surrounding whitespace
    and over-long ids are refused.
    """
    if not isinstance(value, str):
        raise InvalidIdError(f"{kind} must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidIdError(f"{kind} must not be empty")
    if len(value) > limits.max_id_length:
        raise InvalidIdError(
            f"{kind} is {len(value)} characters long; the limit is {limits.max_id_length}"
        )
    if _FORBIDDEN_ID_CHARS.search(value):
        raise InvalidIdError(
            f"{kind} must not contain control characters (newlines, tabs, NUL) or surrogates"
        )
    if value != value.strip():
        raise InvalidIdError(f"{kind} must not start or end with whitespace")
    return value


def _reject_non_finite(value: Any, path: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidStateError(f"state key {path!r} holds {value!r}; JSON has no NaN or Infinity")
    if isinstance(value, dict):
        for k, v in value.items():
            _reject_non_finite(v, f"{path}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _reject_non_finite(v, f"{path}[{i}]")


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether lists and dicts nest more than `limit` deep in `value` (a cycle does)."""
    level: list[Any] = [value]
    for _ in range(limit + 1):
        containers = [node for node in level if isinstance(node, dict | list | tuple)]
        if not containers:
            return False
        level = [
            child
            for node in containers
            for child in (node.values() if isinstance(node, dict) else node)
        ]
    return True


def validate_state(state: dict[str, Any], limits: SessionLimits) -> None:
    """Every key a string, every value plain JSON within the size and depth limits."""
    for key, value in state.items():
        if not isinstance(key, str) or not key:
            raise InvalidStateError(f"state keys must be non-empty strings, got {key!r}")
        if _depth_exceeds(value, MAX_STATE_DEPTH):
            raise InvalidStateError(
                f"state key {key!r} nests lists and objects deeper than {MAX_STATE_DEPTH} levels"
            )
        try:
            encoded = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
            key.encode()
            size = len(encoded.encode())
        except UnicodeEncodeError:
            raise InvalidStateError(
                f"state key {key!r} or its value holds a surrogate, which UTF-8 cannot encode"
            ) from None
        except ValueError:
            _reject_non_finite(value, key)
            raise InvalidStateError(f"state key {key!r} holds a value that is not JSON") from None
        except (TypeError, RecursionError) as exc:
            raise InvalidStateError(
                f"state key {key!r} holds a value that is not JSON-serializable "
                f"({type(value).__name__}): {exc}"
            ) from None
        if json.loads(encoded) != value:
            raise InvalidStateError(
                f"state key {key!r} holds a value JSON would change (a tuple, or a dict with "
                "keys that are not strings): store lists and string keys"
            )
        if size > limits.max_state_value_bytes:
            raise StateTooLargeError(
                f"state key {key!r} is {size} bytes as JSON; "
                f"the limit is {limits.max_state_value_bytes}"
            )


def validate_timestamp(event_id: str, timestamp: object) -> None:
    """An event's timestamp must be a finite number (seconds since the epoch)."""
    if _finite(timestamp) is None:
        raise InvalidEventError(
            f"event {event_id} has timestamp {timestamp!r}; expected a finite number of seconds"
        )


def validate_read(
    num_recent_events: object, after_timestamp: object
) -> tuple[int | None, float | None]:
    """`GetSessionConfig`'s options, checked: (`num_recent_events`, `after_timestamp`) as the
    stores take them. A `num_recent_events` above `MAX_RECENT_EVENTS` reads every event."""
    count: int | None = None
    if num_recent_events is not None:
        if not isinstance(num_recent_events, int) or isinstance(num_recent_events, bool):
            raise InvalidQueryError(
                f"num_recent_events must be a whole number, got {type(num_recent_events).__name__}"
            )
        if num_recent_events < 0:
            raise InvalidQueryError(f"num_recent_events must be >= 0, got {num_recent_events}")
        count = num_recent_events if num_recent_events <= MAX_RECENT_EVENTS else None
    if after_timestamp is None:
        return count, None
    after = _finite(after_timestamp)
    if after is None:
        raise InvalidQueryError(
            f"after_timestamp must be a finite number of seconds, got {after_timestamp!r}"
        )
    return count, after


def _finite(value: object) -> float | None:
    """`value` as a float if it is a finite number (a bool is not one), else None."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond a double's range
        return None
    return number if math.isfinite(number) else None


def validate_event_size(payload: bytes, limits: SessionLimits) -> None:
    if len(payload) > limits.max_event_bytes:
        raise EventTooLargeError(
            f"event is {len(payload)} bytes as JSON; the limit is {limits.max_event_bytes}"
        )
