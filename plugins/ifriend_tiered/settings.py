"""`[backends.tiered]`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TieredSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lru_max_sessions: int = Field(10_000, ge=0)
    lru_max_bytes: int = Field(268_435_456, ge=0)
    redis_backend: str = "redis"
    mysql_backend: str = "mysql"
    # How long Redis stays trusted without a renewal; at most the Redis timeout, so
    # an outage long enough to fail a write always outlives it. Default: 3/4 of it.
    lease_ms: int | None = Field(None, ge=50)
    redis_retry_seconds: float = Field(1.0, ge=0)
