"""Driver failures -> `ifriend.errors`, with messages that carry no data.

Server messages can quote the values of a statement (`Duplicate entry '...'`),
so they are never copied: a message names the operation, the server
(`user@host:port/db`), the error number and a fixed description.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from ifriend.plugin_api import BackendTimeoutError, BackendUnavailableError, StorageError

DUPLICATE_KEY = 1062
BAD_NULL = 1048
DEADLOCK = 1213
NO_SUCH_TABLE = 1146
# The connection is gone: nothing more can be learnt or done on it.
CONNECTION_LOST = frozenset({2006, 2013, 2055, 1927, 4031})

_DESCRIPTIONS = {
    1040: "too many connections",
    1044: "access to the database denied",
    1045: "access denied for the user",
    1049: "unknown database",
    1053: "server shutdown in progress",
    1142: "command denied to the user",
    1146: "table missing (is the schema created?)",
    1153: "statement larger than max_allowed_packet",
    1205: "lock wait timeout",
    1213: "deadlock",
    1290: "server is read-only",
    1792: "transaction is read-only",
    1927: "connection was killed",
    2003: "cannot connect to the server",
    2006: "server has gone away",
    2013: "lost connection during a query",
    2014: "commands out of sync",
    2055: "lost connection",
    4031: "disconnected by the server for inactivity",
}
# Server errors that say the server cannot serve now (rather than "this request is
# wrong"); every client-side error (2000 and up) is one too.
_AVAILABILITY = frozenset(
    {1040, 1044, 1045, 1053, 1129, 1203, 1205, 1213, 1226, 1290, 1792, 1836, 1927, 4031}
)


def error_code(exc: BaseException) -> int | None:
    """The MySQL error number of a driver exception, if it has one."""
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], int):
        return args[0]
    return None


def is_connection_lost(exc: BaseException, driver: Any) -> bool:
    if isinstance(exc, driver.errors.MySQLError):
        return error_code(exc) in CONNECTION_LOST or isinstance(exc, driver.errors.InterfaceError)
    return isinstance(exc, ConnectionError | asyncio.IncompleteReadError)


def translate(exc: BaseException, *, operation: str, server: str, driver: Any) -> StorageError:
    """The `ifriend.errors` exception that stands for `exc` (raise it `from None`)."""
    where = f"MySQL ({server}) {operation}"
    if isinstance(exc, TimeoutError):
        return BackendTimeoutError(f"{where}: no answer within the deadline (timeout_seconds)")
    if isinstance(exc, StorageError):
        return exc
    tls = _tls_failure(exc)
    if tls is not None:  # the handshake: what failed (its reason holds no data)
        return BackendUnavailableError(f"{where} failed: TLS: {tls_reason(tls)}")
    if driver is not None and isinstance(exc, driver.errors.MySQLError):
        code = error_code(exc)
        what = _DESCRIPTIONS.get(code or 0, type(exc).__name__)
        message = f"{where} failed: error {code}: {what}" if code else f"{where} failed: {what}"
        if (code is not None and (code >= 2000 or code in _AVAILABILITY)) or isinstance(
            exc, driver.errors.InterfaceError
        ):
            return BackendUnavailableError(message)
        return StorageError(message)
    if isinstance(exc, OSError | EOFError | asyncio.IncompleteReadError):
        return BackendUnavailableError(f"{where} failed: {type(exc).__name__} (connection)")
    return StorageError(f"{where} failed: {type(exc).__name__}")


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind `exc` (the driver wraps it in error 2003), if there is one."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__
    return None


def tls_reason(exc: ssl.SSLError) -> str:
    """`certificate verify failed (IP address mismatch ...)`, `wrong version number`..."""
    verify = getattr(exc, "verify_message", None)
    if verify:
        return f"certificate verify failed ({verify})"
    return (exc.reason or type(exc).__name__).lower().replace("_", " ")
