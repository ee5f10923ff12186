"""Typed errors raised by ifriend.

ADK's own `AlreadyExistsError`, `SessionNotFoundError` and `StaleSessionError` are
raised unchanged where ADK's contract names them; everything else derives from
`IfriendError`, so callers can catch the framework's failures in one place.
"""

from __future__ import annotations

from typing import Any


class IfriendError(Exception):
    """Base class of every error ifriend raises on its own account."""


class ConfigError(IfriendError):
    """A setting is missing, malformed or out of range.

    The message names the file, the key path, the offending value (secrets
    masked) and what was expected.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        key: str | None = None,
        value: Any = None,
        expected: str | None = None,
    ) -> None:
        self.source = source
        self.key = key
        self.value = value
        self.expected = expected
        parts = [message]
        if key is not None:
            parts.append(f"key: {key}")
        if source is not None:
            parts.append(f"from: {source}")
        if value is not None:
            parts.append(f"value: {value!r}")
        if expected is not None:
            parts.append(f"expected: {expected}")
        super().__init__("; ".join(parts))


class TopologyError(ConfigError):
    """A server is not the kind its settings say: a cluster node configured as a single
    server, or the reverse. Raised at start; it is a setting to fix, not an outage."""


class PluginError(IfriendError):
    """A plugin is broken: a misspelt or async hook, a failing factory."""


class UnknownNameError(PluginError, LookupError):
    """No plugin registered a backend or channel under the requested name."""


class DuplicateNameError(PluginError):
    """Two plugins registered the same name for the same kind of thing."""


class InvalidInputError(IfriendError, ValueError):
    """An id, event or state value was refused before anything was written."""


class InvalidIdError(InvalidInputError):
    """An app, user or session id is empty, too long or has forbidden characters."""


class InvalidEventError(InvalidInputError):
    """An event cannot be stored: it does not serialize, its timestamp is not a finite
    number, or it is too large."""


class EventTooLargeError(InvalidEventError):
    """An event's serialized size exceeds the configured limit."""


class InvalidQueryError(InvalidInputError):
    """A read's options are unusable: `num_recent_events` not a whole number >= 0, or
    `after_timestamp` not a finite number."""


class InvalidStateError(InvalidInputError):
    """A state key or value is not plain JSON (NaN and Infinity included), or nests
    deeper than the limit."""


class StateTooLargeError(InvalidInputError):
    """A state delta's serialized size exceeds the configured limit."""


class StorageError(IfriendError):
    """A storage backend failed; nothing was acknowledged."""


class BackendUnavailableError(StorageError, ConnectionError):
    """A server could not be reached or answered with a failure."""


class BackendTimeoutError(BackendUnavailableError, TimeoutError):
    """A server did not answer within its deadline."""


class ProbeError(IfriendError):
    """A backend answered `ifriend doctor`'s probe, but not what the probe expected."""


class ChannelCrashedError(IfriendError):
    """A channel's `serve()` raised; the others were stopped."""


def describe_error(exc: BaseException) -> str:
    """`Type: message`, or the type alone when the message is empty (no traceback)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
