"""`[backends.redis]`: the Redis session store's settings."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

_SCHEMES = ("redis", "rediss", "unix")


class RedisSettings(BaseModel):
    """Validated `[backends.redis]` table (`REDIS_URL`, `REDIS_SESSION_TTL`... map here)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = Field("ifriend", min_length=1, max_length=64, pattern=r"^[^{}\s]+$")
    session_ttl_seconds: int = Field(3600, gt=0)
    memory_ttl_days: int = Field(30, gt=0)
    timeout_seconds: float = Field(2.0, gt=0)
    max_connections: int = Field(50, gt=0)
    # TTL of the app/user state hashes; None keeps them until deleted.
    state_ttl: int | None = Field(None, gt=0)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        scheme = urlsplit(url).scheme
        if scheme not in _SCHEMES:
            raise ValueError(f"a redis URL starts with {', '.join(s + '://' for s in _SCHEMES)}")
        return url

    @property
    def password(self) -> str | None:
        """The password inside `url`, so error messages can mask it."""
        return urlsplit(self.url).password
