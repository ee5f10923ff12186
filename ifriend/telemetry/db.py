"""Database client spans as OpenTelemetry's (stable) database conventions name them.

A round trip is a CLIENT span named `{db.operation.name} {target}`, with
`db.system.name`, `db.operation.name`, `db.namespace`, `server.address`, `server.port`,
and, when they apply, `db.collection.name`, `db.stored_procedure.name` and
`db.operation.batch.size`. Never a statement's text or its values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .names import DB_NAMESPACE, DB_SYSTEM, SERVER_ADDRESS, SERVER_PORT


def db_attributes(
    system: str, *, address: str | None, port: int | None, namespace: str | None = None
) -> dict[str, Any]:
    """The connection-level attributes of a database client (`db.system.name`, `server.*`,
    `db.namespace`)."""
    found: dict[str, Any] = {DB_SYSTEM: system}
    if address:
        found[SERVER_ADDRESS] = address
    if port:
        found[SERVER_PORT] = int(port)
    if namespace:
        found[DB_NAMESPACE] = namespace
    return found


def batch_operation(operations: Sequence[str], batch: str = "BATCH") -> tuple[str, int | None]:
    """`db.operation.name` and `db.operation.batch.size` of one call sending `operations`.

    One operation is itself (no batch size). Several are a batch: `{batch} {name}` when
    they are all the same, else `{batch}` (`BATCH` in general; Redis says `PIPELINE` or
    `MULTI`).
    """
    if len(operations) == 1:
        return operations[0], None
    first = operations[0] if operations else None
    if first is not None and all(op == first for op in operations):
        return f"{batch} {first}", len(operations)
    return batch, len(operations)


def span_name(operation: str | None, target: str | None, system: str) -> str:
    """`{db.operation.name} {target}`, or whichever of them is known, else the system."""
    if operation and target:
        return f"{operation} {target}"
    return operation or target or system
