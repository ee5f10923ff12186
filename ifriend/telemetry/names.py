"""Names of ifriend's metrics and span attributes, and the duration buckets.

A plugin declares its own counters where it counts them, with `counter(name,
description)` (the Slack plugin's `ifriend.slack.*`, the tiered backend's LRU and Redis
counters); the App's SDK describes them by what they declared.
"""

from __future__ import annotations

OPERATION_DURATION = "ifriend.operation.duration"
TURN_DURATION = "ifriend.turn.duration"
TURN_FIRST_REPLY = "ifriend.turn.time_to_first_reply"
STALE_WRITES = "ifriend.stale_writes"
SPANS_DROPPED = "ifriend.telemetry.spans_dropped"

# Counters by name, with their descriptions.
COUNTERS: dict[str, str] = {
    STALE_WRITES: "Appends refused because the session changed since it was read",
    SPANS_DROPPED: "Spans dropped because the export queue was full",
}


def counter(name: str, description: str) -> str:
    """Declare the counter `name` with its description; returns `name` (for `count`)."""
    COUNTERS[name] = description
    return name


# Bucket bounds in seconds, from 50 µs (an LRU hit) to a minute (a slow model).
DURATION_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)

# ifriend's attributes
BACKEND = "ifriend.backend"
TIER = "ifriend.tier"
OUTCOME = "ifriend.outcome"
OPERATION = "ifriend.operation"
CALL = "ifriend.call"  # a database round trip's purpose in ifriend (`probe`, `append`, ...)
CHANNEL = "ifriend.channel"
ERROR_TYPE = "error.type"

# OpenTelemetry semantic conventions: databases (stable) and GenAI agents
DB_SYSTEM = "db.system.name"
DB_OPERATION = "db.operation.name"
DB_NAMESPACE = "db.namespace"
DB_COLLECTION = "db.collection.name"
DB_PROCEDURE = "db.stored_procedure.name"
DB_BATCH_SIZE = "db.operation.batch.size"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
GEN_AI_OPERATION = "gen_ai.operation.name"
GEN_AI_AGENT = "gen_ai.agent.name"
GEN_AI_CONVERSATION = "gen_ai.conversation.id"
USER_ID = "user.id"

# `gen_ai.operation.name` of the memory operations (GenAI memory conventions)
MEMORY_GEN_AI_OPERATIONS = {
    "add_session_to_memory": "upsert_memory",
    "add_events_to_memory": "upsert_memory",
    "add_memory": "upsert_memory",
    "search_memory": "search_memory",
    "delete_memory": "delete_memory",
}
