"""SQL the store sends, built as multi-statement batches: one round trip each.

Every operation is one `COM_QUERY` holding its whole transaction
(`START TRANSACTION; ...; COMMIT`), so its cost is one network round trip plus
the server's work, whatever the session's length. Values always travel as
parameters (escaped by the driver); only table names, validated at settings
time, are formatted into the text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ifriend.plugin_api import EventRecord, Revision, SessionKey, encode_value

from .schema import Tables

# One snapshot for every read of the batch (REPEATABLE READ whatever the server's default).
SNAPSHOT = (
    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
)


@dataclass(slots=True)
class Result:
    """One statement's outcome within a batch."""

    rowcount: int
    lastrowid: int
    rows: list[tuple] | None


@dataclass
class Batch:
    """Statements sent together; results are looked up by the names given to `add`.

    A `compound` batch travels as one MariaDB compound statement (`BEGIN NOT ATOMIC
    ...; END`): the server answers once, when the last statement is done, instead of
    once per statement, which halves the client's CPU for a short transaction (each
    answer arriving on its own wakes the event loop and the driver). It has a single
    result, so its statements cannot be picked by name.
    """

    parts: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)
    names: dict[str, int] = field(default_factory=dict)
    compound: bool = False

    def add(self, sql: str, args: Sequence[Any] = (), *, name: str | None = None) -> Batch:
        if name is not None:
            self.names[name] = len(self.parts)
        self.parts.append(sql)
        self.args.extend(args)
        return self

    @property
    def sql(self) -> str:
        body = ";\n".join(self.parts)
        return f"BEGIN NOT ATOMIC {body}; END" if self.compound else body

    def pick(self, results: list[Result], name: str) -> Result:
        if self.compound:
            raise ValueError("a compound batch has one result: its statements cannot be picked")
        return results[self.names[name]]


def json_path(key: str) -> str:
    """The JSON path of one top-level member: `$."key"` with the key as a JSON string."""
    return "$." + json.dumps(key, ensure_ascii=False)


def json_set(column: str, delta: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """`JSON_SET(column, path, value, ...)`: JSON null is stored as null, not removed."""
    sql = [f"JSON_SET({column}"]
    args: list[Any] = []
    for key, value in delta.items():
        sql.append(", %s, JSON_EXTRACT(%s, '$')")
        args += [json_path(key), encode_value(value)]
    sql.append(")")
    return "".join(sql), args


def _key_where(alias: str = "") -> str:
    p = f"{alias}." if alias else ""
    return f"{p}app_name = %s AND {p}user_id = %s AND {p}session_id = %s"


def _key_args(key: SessionKey) -> list[str]:
    return [key.app_name, key.user_id, key.session_id]


def upsert_scope(
    table: str, ids: Sequence[str], id_columns: Sequence[str], delta: Mapping[str, Any]
) -> tuple[str, list[Any]]:
    """Apply a state delta to an app/user row that may not exist yet.

    The row's new version becomes the statement's insert id (`LAST_INSERT_ID(expr)`),
    so the caller learns it without another statement.
    """
    set_sql, set_args = json_set("state", delta)
    columns = ", ".join(id_columns)
    marks = ", ".join("%s" for _ in id_columns)
    sql = (
        f"INSERT INTO {table} ({columns}, version, state) VALUES ({marks}, LAST_INSERT_ID(1), %s) "
        f"ON DUPLICATE KEY UPDATE state = {set_sql}, version = LAST_INSERT_ID(version + 1)"
    )
    return sql, [*ids, encode_value(dict(delta)), *set_args]


def _add_scopes(
    batch: Batch, t: Tables, key: SessionKey, app_delta: Mapping, user_delta: Mapping
) -> None:
    if app_delta:
        sql, args = upsert_scope(t.app_state, [key.app_name], ["app_name"], app_delta)
        batch.add(sql, args, name="app")
    if user_delta:
        sql, args = upsert_scope(
            t.user_state, [key.app_name, key.user_id], ["app_name", "user_id"], user_delta
        )
        batch.add(sql, args, name="user")


def create(
    t: Tables,
    key: SessionKey,
    *,
    incarnation: str,
    state_json: str,
    created_at: float,
    app_delta: Mapping[str, Any],
    user_delta: Mapping[str, Any],
) -> Batch:
    batch = Batch().add("START TRANSACTION")
    batch.add(
        f"INSERT INTO {t.sessions} (app_name, user_id, session_id, incarnation, version, "
        "created_at, update_time, state) VALUES (%s, %s, %s, %s, 0, %s, %s, %s)",
        [*_key_args(key), incarnation, created_at, created_at, state_json],
        name="insert",
    )
    _add_scopes(batch, t, key, app_delta, user_delta)
    batch.add(
        f"SELECT version, state FROM {t.app_state} WHERE app_name = %s",
        [key.app_name],
        name="app_state",
    )
    batch.add(
        f"SELECT version, state FROM {t.user_state} WHERE app_name = %s AND user_id = %s",
        [key.app_name, key.user_id],
        name="user_state",
    )
    return batch.add("COMMIT")


def append(
    t: Tables, key: SessionKey, record: EventRecord, expected: Revision, *, compound: bool = False
) -> Batch:
    """The append transaction.

    The UPDATE moves the revision only if it is `expected`, and leaves the
    session's pk in `LAST_INSERT_ID()`; the event INSERT takes its pk from there,
    so when the UPDATE matched nothing the INSERT fails (NULL pk, error 1048)
    and the batch stops before COMMIT: nothing after a failed guard can commit.
    With `compound` (MariaDB), an append without app or user state (whose new
    versions are read from their statements' results) is one compound statement.
    """
    batch = Batch().add("START TRANSACTION").add("DO LAST_INSERT_ID(0)")
    sets = ["version = version + 1", "update_time = %s"]
    args: list[Any] = [record.timestamp]
    if record.session_delta:
        state_sql, state_args = json_set("state", record.session_delta)
        sets.append(f"state = {state_sql}")
        args += state_args
    sets.append("pk = LAST_INSERT_ID(pk)")
    batch.add(
        f"UPDATE {t.sessions} SET {', '.join(sets)} WHERE {_key_where()} "
        "AND incarnation = %s AND version = %s",
        [*args, *_key_args(key), expected.incarnation, expected.version],
        name="update",
    )
    batch.add(
        f"INSERT INTO {t.events} (session_pk, seq, event_id, timestamp, payload) "
        "VALUES (NULLIF(LAST_INSERT_ID(), 0), %s, %s, %s, UNHEX(%s))",
        # As hex: the driver escapes bytes one by one (23 us for a 760-byte event), hex in C.
        [expected.version + 1, record.event_id, record.timestamp, record.payload.hex()],
        name="event",
    )
    _add_scopes(batch, t, key, record.app_delta, record.user_delta)
    batch.compound = compound and not (record.app_delta or record.user_delta)
    return batch.add("COMMIT")


def diagnose(t: Tables, key: SessionKey, event_id: str, *, rollback: bool) -> Batch:
    """Why an append did not apply: the session's revision and whether the event is stored."""
    batch = Batch()
    if rollback:
        batch.add("ROLLBACK")
    return batch.add(
        "SELECT s.incarnation, s.version, s.update_time, "
        f"EXISTS(SELECT 1 FROM {t.events} e WHERE e.session_pk = s.pk AND e.event_id = %s) "
        f"FROM {t.sessions} s WHERE {_key_where('s')}",
        [event_id, *_key_args(key)],
        name="session",
    )


def load(
    t: Tables, key: SessionKey, num_recent_events: int | None, after_timestamp: float | None
) -> Batch:
    """Session row, app/user state and the selected events, in one snapshot.

    Filters match `filter_events`: the last `num_recent_events` first, then only
    the events after the last one (of those) older than `after_timestamp`.
    """
    batch = Batch().add(SNAPSHOT[0]).add(SNAPSHOT[1])
    batch.add(
        "SELECT s.incarnation, s.version, s.update_time, s.state, a.version, a.state, "
        f"u.version, u.state FROM {t.sessions} s "
        f"LEFT JOIN {t.app_state} a ON a.app_name = s.app_name "
        f"LEFT JOIN {t.user_state} u ON u.app_name = s.app_name AND u.user_id = s.user_id "
        f"WHERE {_key_where('s')}",
        _key_args(key),
        name="session",
    )
    # Both bounds are constants by the time events are read (the session row is a
    # const table, the cutoff a variable), so the read is an index range: only
    # the selected events are touched, however long the session is.
    window = ""
    window_args: list[Any] = []
    if num_recent_events is not None:
        window = " AND {e}.seq > CAST(s.version AS SIGNED) - %s"
        window_args = [num_recent_events]
    where = f"{_key_where('s')}{window.format(e='e')}"
    args: list[Any] = [*_key_args(key), *window_args]
    if after_timestamp is not None:
        batch.add(
            "SET @ifriend_after = COALESCE((SELECT o.seq FROM "
            f"{t.sessions} s JOIN {t.events} o ON o.session_pk = s.pk WHERE {_key_where('s')}"
            f"{window.format(e='o')} AND o.timestamp < %s ORDER BY o.seq DESC LIMIT 1), 0)",
            [*_key_args(key), *window_args, after_timestamp],
        )
        where += " AND e.seq > @ifriend_after"
    batch.add(
        f"SELECT e.payload FROM {t.sessions} s JOIN {t.events} e ON e.session_pk = s.pk "
        f"WHERE {where} ORDER BY e.seq",
        args,
        name="events",
    )
    return batch.add("COMMIT")


def delete(t: Tables, key: SessionKey) -> Batch:
    """Lock the session row first (as appends do), then drop its events and itself."""
    return (
        Batch()
        .add("START TRANSACTION")
        .add(f"SELECT pk FROM {t.sessions} WHERE {_key_where()} FOR UPDATE", _key_args(key))
        .add(
            f"DELETE e FROM {t.events} e JOIN {t.sessions} s ON e.session_pk = s.pk "
            f"WHERE {_key_where('s')}",
            _key_args(key),
        )
        .add(f"DELETE FROM {t.sessions} WHERE {_key_where()}", _key_args(key))
        .add("COMMIT")
    )


def list_sessions(t: Tables, app_name: str, user_id: str | None) -> Batch:
    batch = Batch().add(SNAPSHOT[0]).add(SNAPSHOT[1])
    if user_id is None:
        batch.add(
            f"SELECT user_id, session_id, update_time, state FROM {t.sessions} WHERE app_name = %s",
            [app_name],
            name="sessions",
        )
        users_sql = (
            f"SELECT user_id, state FROM {t.user_state} WHERE app_name = %s AND user_id IN "
            f"(SELECT user_id FROM {t.sessions} WHERE app_name = %s)"
        )
        users_args = [app_name, app_name]
    else:
        batch.add(
            f"SELECT user_id, session_id, update_time, state FROM {t.sessions} "
            "WHERE app_name = %s AND user_id = %s",
            [app_name, user_id],
            name="sessions",
        )
        users_sql = (
            f"SELECT user_id, state FROM {t.user_state} WHERE app_name = %s AND user_id = %s"
        )
        users_args = [app_name, user_id]
    batch.add(f"SELECT state FROM {t.app_state} WHERE app_name = %s", [app_name], name="app")
    batch.add(users_sql, users_args, name="users")
    return batch.add("COMMIT")
