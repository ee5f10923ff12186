"""The tiered backend's counters."""

from __future__ import annotations

from ifriend.plugin_api import telemetry

LRU_HITS = telemetry.counter("ifriend.lru.hits", "Session reads the in-process LRU held (current or behind Redis)")
LRU_MISSES = telemetry.counter("ifriend.lru.misses", "Session reads the in-process LRU did not hold")
REHYDRATIONS = telemetry.counter("ifriend.rehydrations", "Sessions read from MySQL and copied back into Redis")
REDIS_FALLBACKS = telemetry.counter(
    "ifriend.redis.fallbacks", "Tiered operations that used MySQL alone because Redis was unreachable or untrusted"
)
REDIS_OUTAGES = telemetry.counter(
    "ifriend.redis.outages", "Times a replica stopped every replica trusting Redis (it may lack acked writes)"
)
