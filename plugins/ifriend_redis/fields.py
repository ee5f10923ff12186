"""What the hashes hold: session meta, app/user state, and the commands that read them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ifriend.sessions.codec import decode_value, encode_value
from ifriend.sessions.store import Revision

from .client import Op

STATE = b"s:"  # state keys are stored as `s:<key>`, apart from the bookkeeping fields


@dataclass(slots=True)
class Meta:
    """A present session's meta hash."""

    revision: Revision
    ts: float
    state: dict[str, Any]


def meta_from_flat(flat: list[bytes]) -> Meta:
    """A flat HGETALL of a present session's meta, as the scripts return it."""
    meta = meta_from_hash(dict(zip(flat[::2], flat[1::2], strict=True)))
    if meta is None:
        raise ValueError("a script returned a session without inc/ver")
    return meta


def meta_from_hash(meta: dict[bytes, bytes]) -> Meta | None:
    if b"ver" not in meta or b"inc" not in meta:
        return None
    state = {k[2:].decode(): decode_value(v) for k, v in meta.items() if k.startswith(STATE)}
    revision = Revision(meta[b"inc"].decode(), int(meta[b"ver"]))
    return Meta(revision, float(meta.get(b"ts", 0)), state)


def scope_state(raw: dict[bytes, bytes] | None) -> tuple[dict[str, Any], int | None]:
    """An app/user state hash as (state, version); version None if it has no `_v`."""
    if not raw:
        return {}, None
    state = {k[2:].decode(): decode_value(v) for k, v in raw.items() if k.startswith(STATE)}
    version = raw.get(b"_v")
    return state, int(version) if version is not None else None


def state_pairs(state: dict[str, Any]) -> list[str]:
    """`s:<key>`, JSON, ... as HSET arguments."""
    out: list[str] = []
    for k, v in state.items():
        out += ["s:" + k, encode_value(v)]
    return out


def zpairs(pairs: list[Any]) -> list[tuple[str, float]]:
    """ZRANGE ... WITHSCORES as (member, score)."""
    return [(m.decode() if isinstance(m, bytes) else m, float(s)) for m, s in pairs]


def hgetall(key: str) -> Op:
    return lambda p: p.hgetall(key)


def zrange(key: str) -> Op:
    return lambda p: p.zrange(key, 0, -1, withscores=True)


def zrem(key: str, member: str) -> Op:
    return lambda p: p.zrem(key, member)


def llen(key: str) -> Op:
    return lambda p: p.llen(key)


def hlen(key: str) -> Op:
    return lambda p: p.hlen(key)
