"""What the hashes hold: session meta, app/user state, and the commands that read them.

Replies are raw: a hash is a dict in RESP3 (redis-py 8's default) and a flat
`[field, value, ...]` list in RESP2 (`?protocol=2`) and in every script's reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ifriend.plugin_api import Revision, decode_value, encode_value

from .client import Op

STATE = b"s:"  # state keys are stored as `s:<key>`, apart from the bookkeeping fields


@dataclass(slots=True)
class Meta:
    """A present session's meta hash."""

    revision: Revision
    ts: float
    state: dict[str, Any]


def as_hash(raw: list[bytes] | dict[bytes, bytes] | None) -> dict[bytes, bytes]:
    """An HGETALL reply (a dict in RESP3, a flat list in RESP2 and from scripts) as a dict."""
    if not raw:
        return {}
    if isinstance(raw, dict):
        return raw
    it = iter(raw)
    return dict(zip(it, it, strict=True))


def meta_from_flat(flat: list[bytes] | dict[bytes, bytes]) -> Meta:
    """A flat HGETALL of a present session's meta, as the scripts return it."""
    meta = meta_from_hash(as_hash(flat))
    if meta is None:
        raise ValueError("a script returned a session without inc/ver")
    return meta


def meta_from_hash(meta: dict[bytes, bytes]) -> Meta | None:
    if b"ver" not in meta or b"inc" not in meta:
        return None
    revision = Revision(meta[b"inc"].decode(), int(meta[b"ver"]))
    return Meta(revision, float(meta.get(b"ts", 0)), _state(meta))


def scope_state(raw: list[bytes] | dict[bytes, bytes] | None) -> tuple[dict[str, Any], int | None]:
    """An app/user state hash (an HGETALL reply) as (state, version); version None if no `_v`."""
    if not raw:
        return {}, None
    hash_ = as_hash(raw)
    version = hash_.get(b"_v")
    return _state(hash_), int(version) if version is not None else None


def _state(hash_: dict[bytes, bytes]) -> dict[str, Any]:
    # JSON from str: json.loads of bytes first sniffs their encoding
    return {k[2:].decode(): decode_value(v.decode()) for k, v in hash_.items() if k[:2] == STATE}


def state_pairs(state: dict[str, Any]) -> list[str]:
    """`s:<key>`, JSON, ... as HSET arguments."""
    out: list[str] = []
    for k, v in state.items():
        out += ["s:" + k, encode_value(v)]
    return out


def zpairs(raw: list[Any]) -> list[tuple[str, float]]:
    """ZRANGE ... WITHSCORES as (member, score): flat (RESP2) or pairs (RESP3)."""
    if raw and isinstance(raw[0], list):
        pairs = [(m, s) for m, s in raw]
    else:
        it = iter(raw)
        pairs = list(zip(it, it, strict=True))
    return [(m.decode() if isinstance(m, bytes) else m, float(s)) for m, s in pairs]


def hgetall(key: str) -> Op:
    return ("HGETALL", key)


def zrange(key: str) -> Op:
    return ("ZRANGE", key, 0, -1, "WITHSCORES")


def zrem(key: str, member: str) -> Op:
    return ("ZREM", key, member)


def llen(key: str) -> Op:
    return ("LLEN", key)


def hlen(key: str) -> Op:
    return ("HLEN", key)


def exists(key: str) -> Op:
    return ("EXISTS", key)


def delete(*keys: str) -> Op:
    return ("DEL", *keys)
