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
    # Replicas that must acknowledge a mirror before it counts (WAIT): None means 1 on a
    # Redis Cluster (a failover must not lose acknowledged history), 0 on a single node.
    wait_replicas: int | None = Field(None, ge=0, le=5)
    wait_timeout_ms: int = Field(200, ge=1)
    # How far a replica's clock may be from Redis's (the lease's deadline is absolute).
    clock_skew_ms: int = Field(100, ge=0)
