"""Key names. Every key of one session shares a hash tag, hence a cluster slot.

Ids are percent-encoded (`quote(id, safe="")`), so `{`, `}`, `|`, `:` and `%`
in an id cannot end a hash tag, split a key or make two id triples collide.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from ifriend.plugin_api import SessionKey


@lru_cache(maxsize=8192)
def _q(value: str) -> str:
    return quote(value, safe="")


_SESSIONS_CACHED = 4096


@dataclass(frozen=True, slots=True)
class SessionKeys:
    """The three keys of one session, in the order the scripts take them."""

    meta: str
    log: str
    ids: str

    def all(self) -> tuple[str, str, str]:
        return (self.meta, self.log, self.ids)


class Keys:
    """Builds every key under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._sessions: dict[SessionKey, SessionKeys] = {}  # built on every call otherwise
        self._lease = f"{prefix}:lease"
        self.health = f"{prefix}:health"

    def session(self, key: SessionKey) -> SessionKeys:
        keys = self._sessions.get(key)
        if keys is None:
            if len(self._sessions) >= _SESSIONS_CACHED:
                self._sessions.clear()
            tag = f"{self.prefix}:{{s|{_q(key.app_name)}|{_q(key.user_id)}|{_q(key.session_id)}}}"
            keys = self._sessions[key] = SessionKeys(f"{tag}:meta", f"{tag}:log", f"{tag}:ids")
        return keys

    def app_state(self, app_name: str) -> str:
        return f"{self.prefix}:{{a|{_q(app_name)}}}:state"

    def users(self, app_name: str) -> str:
        """ZSET of the app's user ids (score: last write)."""
        return f"{self.prefix}:{{a|{_q(app_name)}}}:users"

    def user_state(self, app_name: str, user_id: str) -> str:
        return f"{self.prefix}:{{u|{_q(app_name)}|{_q(user_id)}}}:state"

    def sessions(self, app_name: str, user_id: str) -> str:
        """ZSET of the user's session ids (score: last update time)."""
        return f"{self.prefix}:{{u|{_q(app_name)}|{_q(user_id)}}}:sessions"

    def scope_state(self, app_name: str, user_id: str | None) -> str:
        """The app state hash (user_id None) or the user state hash."""
        return self.app_state(app_name) if user_id is None else self.user_state(app_name, user_id)

    @property
    def lease(self) -> str:
        return self._lease


def op_id_for_event(key: SessionKey, event_id: str) -> str:
    """Names one append, so a retried scope-state write is applied once."""
    return f"e:{_q(key.user_id)}:{_q(key.session_id)}:{_q(event_id)}"


def op_id_for_create(incarnation: str) -> str:
    return f"c:{incarnation}"
