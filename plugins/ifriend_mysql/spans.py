"""The client span of a store call, named by the statements it sent (database conventions).

`db.operation.name` is the statement's keyword (`SELECT`, `INSERT`), or `BATCH` /
`BATCH INSERT` for several in one call (transaction control, `SET` and `START
TRANSACTION` and `COMMIT`, is not counted); `db.collection.name` the table when every
statement names the same one. The span is named `{db.operation.name} {table}`, else
`{db.operation.name} {database}`. Never a statement's text or its values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from ifriend.plugin_api import telemetry

_CONTROL = {"SET", "START", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "XA", "DO"}
_TABLES = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN|TABLE)\s+`?([A-Za-z0-9_$]+)`?", re.IGNORECASE)
_sent: ContextVar[list[str] | None] = ContextVar("ifriend_mysql_statements", default=None)
_named: dict[tuple[str, ...], tuple[str, dict[str, Any]]] = {}


def sent(statements: Sequence[str]) -> None:
    """Record statements sent by the store call in flight (inside `naming`)."""
    found = _sent.get()
    if found is not None:
        found.extend(statements)


@contextmanager
def naming(span: Any, connection: Mapping[str, Any]) -> Iterator[None]:
    """Name `span` when the block ends by the statements it sent (see `sent`)."""
    token = _sent.set(statements := [])
    try:
        yield
    finally:
        _sent.reset(token)
        if statements:
            name, attributes = span_naming(statements, connection)
            span.update_name(name)
            span.set_attributes(attributes)


def span_naming(statements: Sequence[str], connection: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The span name and `db.*` attributes of a call that sent `statements`."""
    system, namespace = connection.get(telemetry.DB_SYSTEM, ""), connection.get(telemetry.DB_NAMESPACE, "")
    key = (system, namespace, *statements)
    found = _named.get(key)
    if found is None:
        if len(_named) > 1024:  # statements come in a few shapes; never grow without bound
            _named.clear()
        found = _named[key] = _name_of(statements, connection)
    return found


def _name_of(statements: Sequence[str], connection: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    keywords, tables = [], set()
    for sql in statements:
        words = sql.lstrip(" \n\t(").split(None, 1)
        keyword = words[0].upper() if words else ""
        if keyword and keyword not in _CONTROL:
            keywords.append(keyword)
            tables.update(_TABLES.findall(sql))
    if not keywords:  # only transaction control (a ROLLBACK after a failure)
        keywords = [statements[-1].split(None, 1)[0].upper()] if statements[-1].strip() else ["BATCH"]
    operation, size = telemetry.batch_operation(keywords)
    attributes: dict[str, Any] = {telemetry.DB_OPERATION: operation}
    if size is not None:
        attributes[telemetry.DB_BATCH_SIZE] = size
    if len(tables) == 1:
        target = attributes[telemetry.DB_COLLECTION] = tables.pop()
    else:
        target = connection.get(telemetry.DB_NAMESPACE)
    system = str(connection.get(telemetry.DB_SYSTEM, "mysql"))
    return telemetry.span_name(operation, target, system), attributes
