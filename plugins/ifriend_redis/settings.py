"""`[backends.redis]`: the Redis session store's settings."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

_SCHEMES = ("redis", "rediss", "unix")


class RedisSettings(BaseModel):
    """Validated `[backends.redis]` table (`REDIS_URL`, `REDIS_SESSION_TTL`... map here)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = "redis://127.0.0.1:6379/0"
    # A Redis Cluster: `url` names any node; the others are found from it.
    cluster: bool = False
    key_prefix: str = Field("ifriend", min_length=1, max_length=64, pattern=r"^[^{}\s]+$")
    session_ttl_seconds: int = Field(3600, gt=0)
    memory_ttl_days: int = Field(30, gt=0)
    timeout_seconds: float = Field(2.0, gt=0)
    # Per server (per node of a cluster); callers beyond it wait, up to their deadline.
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

    @field_validator("cluster")
    @classmethod
    def _cluster_url(cls, cluster: bool, info: ValidationInfo) -> bool:
        url = info.data.get("url")
        if cluster and url is not None:
            parts = urlsplit(url)
            if parts.scheme == "unix":
                raise ValueError("a redis:// or rediss:// url naming a cluster node (not unix://)")
            if parts.path.strip("/") not in ("", "0"):
                raise ValueError("a url with database 0 (/0 or no path): a cluster has no other")
        return cluster

    @property
    def password(self) -> str | None:
        """The password inside `url`, so error messages can mask it."""
        return urlsplit(self.url).password
