"""What telemetry may hold about people: ids hashed unless asked for, content off.

The rules are the process's (the latest running App's `[telemetry]`, see `setup`):
ADK's content switches are environment variables, so they cannot differ per App.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class Privacy:
    """What telemetry may hold about people. The defaults are the private ones."""

    capture_user_ids: bool = False
    capture_content: bool = False
    user_id_key: bytes = b""


_privacy = Privacy(user_id_key=secrets.token_bytes(32))


def privacy() -> Privacy:
    return _privacy


def set_privacy(new: Privacy) -> Privacy:
    """Make `new` the process's privacy rules; returns the previous ones (to restore)."""
    global _privacy
    previous, _privacy = _privacy, new
    return previous


def user_id_attribute(user_id: str) -> str:
    """`user_id` as it may appear in telemetry: keyed SHA-256, 16 hex digits, unless
    `capture_user_ids`. The key is derived from `[telemetry] user_id_secret` (the same on
    every replica of a deployment), else random per process."""
    return _hashed(b"", user_id)


def conversation_id_attribute(session_id: str) -> str:
    """A session id as `gen_ai.conversation.id`, under the same rules as user ids (its own
    hash), so one conversation has one id in every span, ifriend's and ADK's."""
    return _hashed(b"conversation\0", session_id)


def _hashed(domain: bytes, value: str) -> str:
    rules = _privacy
    if rules.capture_user_ids:
        return value
    data = domain + value.encode("utf-8", "surrogatepass")
    return hmac.new(rules.user_id_key, data, hashlib.sha256).hexdigest()[:16]
