"""The MySQL schema: DDL, its versions, and the migration run on connect.

Migrations are applied in order under `GET_LOCK`, each recorded in
`<prefix>schema_version`, so replicas starting together migrate once. Every
statement is idempotent (`IF NOT EXISTS`), so a migration interrupted half way
is simply run again. `config/sql/schema.sql` is `script("ifriend_")`.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from ifriend.plugin_api import StorageError

from .failures import NO_SUCH_TABLE

# Ids are at most 255 characters (`session.max_id_length`), UTF-8 up to 4 bytes each.
ID = "VARBINARY(1020) NOT NULL"
TABLE_OPTIONS = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"


@dataclass(frozen=True)
class Tables:
    """Table names for one `table_prefix` (validated as [A-Za-z0-9_]{0,32})."""

    prefix: str

    @property
    def sessions(self) -> str:
        return f"`{self.prefix}sessions`"

    @property
    def events(self) -> str:
        return f"`{self.prefix}events`"

    @property
    def app_state(self) -> str:
        return f"`{self.prefix}app_state`"

    @property
    def user_state(self) -> str:
        return f"`{self.prefix}user_state`"

    @property
    def redis_repairs(self) -> str:
        return f"`{self.prefix}redis_repairs`"

    @property
    def redis_outages(self) -> str:
        return f"`{self.prefix}redis_outages`"

    @property
    def schema_version(self) -> str:
        return f"`{self.prefix}schema_version`"

    @property
    def memory_users(self) -> str:
        return f"`{self.prefix}memory_users`"

    @property
    def memories(self) -> str:
        return f"`{self.prefix}memories`"

    @property
    def memory_index(self) -> str:
        return f"`{self.prefix}memory_index`"

    @property
    def memory_terms(self) -> str:
        return f"`{self.prefix}memory_terms`"

    @property
    def memory_term_counts(self) -> str:
        return f"`{self.prefix}memory_term_counts`"

    @property
    def memory_tombstones(self) -> str:
        return f"`{self.prefix}memory_tombstones`"

    def all(self) -> list[str]:
        return [
            self.events,
            self.sessions,
            self.app_state,
            self.user_state,
            self.redis_repairs,
            self.redis_outages,
            self.memory_terms,
            self.memory_index,
            self.memory_term_counts,
            self.memory_tombstones,
            self.memories,
            self.memory_users,
            self.schema_version,
        ]


SCHEMA_VERSION_DDL = """CREATE TABLE IF NOT EXISTS {t.schema_version} (
  version INT UNSIGNED NOT NULL PRIMARY KEY,
  applied_at DOUBLE NOT NULL
) {options}"""

# (version, statements); append new versions, never edit a released one.
MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE IF NOT EXISTS {t.sessions} (
  pk BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  app_name {id},
  user_id {id},
  session_id {id},
  incarnation VARBINARY(64) NOT NULL,
  version BIGINT UNSIGNED NOT NULL,
  created_at DOUBLE NOT NULL,
  update_time DOUBLE NOT NULL,
  state JSON NOT NULL,
  PRIMARY KEY (pk),
  UNIQUE KEY session_key (app_name, user_id, session_id),
  KEY by_update_time (app_name, user_id, update_time)
) {options}""",
            """CREATE TABLE IF NOT EXISTS {t.events} (
  session_pk BIGINT UNSIGNED NOT NULL,
  seq BIGINT UNSIGNED NOT NULL,
  event_id {id},
  timestamp DOUBLE NOT NULL,
  payload LONGBLOB NOT NULL,
  PRIMARY KEY (session_pk, seq),
  UNIQUE KEY event_id (session_pk, event_id)
) {options}""",
            """CREATE TABLE IF NOT EXISTS {t.app_state} (
  app_name {id},
  version BIGINT UNSIGNED NOT NULL,
  state JSON NOT NULL,
  PRIMARY KEY (app_name)
) {options}""",
            """CREATE TABLE IF NOT EXISTS {t.user_state} (
  app_name {id},
  user_id {id},
  version BIGINT UNSIGNED NOT NULL,
  state JSON NOT NULL,
  PRIMARY KEY (app_name, user_id)
) {options}""",
            """CREATE TABLE IF NOT EXISTS {t.redis_repairs} (
  pk BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  app_name {id},
  user_id {id},
  session_id {id},
  created_at DOUBLE NOT NULL,
  PRIMARY KEY (pk)
) {options}""",
        ],
    ),
    (
        2,
        [
            # Long-term memory (ifriend_mysql.memory). One row per (app, user): its pk keys
            # every other memory row, and an add locks it (one writer per user at a time).
            """CREATE TABLE IF NOT EXISTS {t.memory_users} (
  pk BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  app_name {id},
  user_id {id},
  PRIMARY KEY (pk),
  UNIQUE KEY scope (app_name, user_id)
) {options}""",
            # `text` is the searchable text as written, case-insensitive and FULLTEXT-indexed
            # for reports; searches use the word index below (ADK's matching: no stopwords,
            # no minimum word length).
            """CREATE TABLE IF NOT EXISTS {t.memories} (
  pk BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  user_pk BIGINT UNSIGNED NOT NULL,
  memory_id {id},
  session_id VARBINARY(1020) NULL,
  timestamp DOUBLE NOT NULL,
  author TEXT NULL,
  text MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
  payload LONGBLOB NOT NULL,
  digest BINARY(20) NOT NULL,
  created_at DOUBLE NOT NULL,
  PRIMARY KEY (pk),
  UNIQUE KEY memory_id (user_pk, memory_id),
  KEY by_session (user_pk, session_id),
  FULLTEXT KEY text (text)
) {options}""",
            # What a search reads of an entry, in a narrow row: its terms ("\n"-delimited),
            # and for non-ASCII query words its NFC lowercased text and extra words.
            """CREATE TABLE IF NOT EXISTS {t.memory_index} (
  memory_pk BIGINT UNSIGNED NOT NULL,
  terms MEDIUMBLOB NOT NULL,
  text_lower MEDIUMBLOB NOT NULL,
  extras BLOB NOT NULL,
  PRIMARY KEY (memory_pk)
) {options}""",
            """CREATE TABLE IF NOT EXISTS {t.memory_terms} (
  memory_pk BIGINT UNSIGNED NOT NULL,
  term VARBINARY(255) NOT NULL,
  user_pk BIGINT UNSIGNED NOT NULL,
  timestamp DOUBLE NOT NULL,
  PRIMARY KEY (memory_pk, term),
  KEY postings (user_pk, term, timestamp)
) {options}""",
            """CREATE TABLE IF NOT EXISTS {t.memory_term_counts} (
  user_pk BIGINT UNSIGNED NOT NULL,
  term VARBINARY(255) NOT NULL,
  n BIGINT NOT NULL,
  PRIMARY KEY (user_pk, term)
) {options}""",
            """CREATE TABLE IF NOT EXISTS {t.memory_tombstones} (
  user_pk BIGINT UNSIGNED NOT NULL,
  memory_id {id},
  deleted_at DOUBLE NOT NULL,
  PRIMARY KEY (user_pk, memory_id)
) {options}""",
        ],
    ),
    (
        3,
        [
            # The tiered store: a replica that acknowledges writes Redis may lack keeps a
            # row here alive (MySQL's clock); while any row lives, no replica renews the
            # Redis lease, so nobody trusts Redis.
            """CREATE TABLE IF NOT EXISTS {t.redis_outages} (
  replica VARBINARY(64) NOT NULL,
  started_at DOUBLE NOT NULL,
  expires_at DOUBLE NOT NULL,
  PRIMARY KEY (replica)
) {options}""",
        ],
    ),
]
LATEST = MIGRATIONS[-1][0]


def render(statement: str, tables: Tables) -> str:
    return statement.format(t=tables, id=ID, options=TABLE_OPTIONS)


def script(prefix: str = "ifriend_") -> str:
    """The whole schema as one SQL file, for operators who create it by hand."""
    tables = Tables(prefix)
    lines = [
        "-- ifriend MySQL schema, sessions and memory (generated by ifriend_mysql.schema.script;",
        "-- the store applies it itself on connect unless create_schema = false).",
        f"-- Table prefix: {prefix!r} (backends.mysql.table_prefix).",
        "",
        render(SCHEMA_VERSION_DDL, tables) + ";",
    ]
    for version, statements in MIGRATIONS:
        lines += ["", f"-- version {version}"]
        lines += [render(s, tables) + ";" for s in statements]
        lines.append(
            f"INSERT INTO {tables.schema_version} (version, applied_at) "
            f"VALUES ({version}, UNIX_TIMESTAMP()) ON DUPLICATE KEY UPDATE version = version;"
        )
    return "\n".join(lines) + "\n"


def lock_name(database: str, prefix: str) -> str:
    """The `GET_LOCK` name guarding migrations of one database and prefix (<= 64 chars)."""
    digest = hashlib.sha1(f"{database}\0{prefix}".encode()).hexdigest()[:16]
    return f"ifriend_schema:{digest}"


async def _query(conn: Any, sql: str, args: tuple[Any, ...] | None = None) -> list[tuple]:
    cur = conn.cursor()
    await cur.execute(sql, args)
    rows = await cur.fetchall()
    await cur.close()
    return list(rows or ())


async def current_version(conn: Any, tables: Tables, no_such_table: type[Exception]) -> int:
    """The applied schema version, 0 if the version table does not exist."""
    try:
        rows = await _query(conn, f"SELECT MAX(version) FROM {tables.schema_version}")
    except no_such_table as exc:
        if exc.args and exc.args[0] == NO_SUCH_TABLE:
            return 0
        raise
    return int(rows[0][0] or 0)


async def migrate(
    conn: Any,
    tables: Tables,
    *,
    found: int,
    lock: str,
    lock_wait_seconds: int,
    create: bool,
    no_such_table: type[Exception],
) -> None:
    """Bring the schema from version `found` to `LATEST`, unless another replica just did.

    Without `create`, a schema behind `LATEST` is an error naming the SQL file.
    """
    if not create:
        raise StorageError(
            f"the MySQL schema with prefix {tables.prefix!r} is at version {found}, "
            f"this ifriend needs {LATEST}; set backends.mysql.create_schema = true "
            "or apply config/sql/schema.sql"
        )
    (got,) = (await _query(conn, "SELECT GET_LOCK(%s, %s)", (lock, lock_wait_seconds)))[0]
    if got != 1:
        raise StorageError(
            f"could not take the schema lock {lock!r} within {lock_wait_seconds}s "
            "(another replica is migrating?)"
        )
    try:
        await _query(conn, "SET SESSION sql_notes = 0")  # "already exists" is expected
        await _query(conn, render(SCHEMA_VERSION_DDL, tables))
        found = await current_version(conn, tables, no_such_table)
        for version, statements in MIGRATIONS:
            if version <= found:
                continue
            for statement in statements:
                await _query(conn, render(statement, tables))
            await _query(
                conn,
                f"INSERT INTO {tables.schema_version} (version, applied_at) VALUES (%s, %s)",
                (version, time.time()),
            )
    finally:
        try:
            await _query(conn, "SELECT RELEASE_LOCK(%s)", (lock,))
        except Exception:  # the lock goes with the connection anyway; keep the first error
            conn.close()
