"""Checks run on every write before anything reaches a store."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from ..errors import EventTooLargeError, InvalidIdError, InvalidStateError, StateTooLargeError

_FORBIDDEN_ID_CHARS = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


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


def validate_state(state: dict[str, Any], limits: SessionLimits) -> None:
    """Every key a string, every value plain JSON within the size limit."""
    for key, value in state.items():
        if not isinstance(key, str) or not key:
            raise InvalidStateError(f"state keys must be non-empty strings, got {key!r}")
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


def validate_event_size(payload: bytes, limits: SessionLimits) -> None:
    if len(payload) > limits.max_event_bytes:
        raise EventTooLargeError(
            f"event is {len(payload)} bytes as JSON; the limit is {limits.max_event_bytes}"
        )
