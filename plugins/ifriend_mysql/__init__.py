"""Built-in plugin: the `mysql` session and memory backends (MySQL / MariaDB via asyncmy).

asyncmy is imported only when the store connects (or the backend is built),
so ifriend runs without the `mysql` extra until this backend is selected.
"""

from __future__ import annotations

from ifriend.plugin_api import BackendContext, hookimpl

from .memory import MySQLMemoryStore
from .settings import MySQLSettings
from .store import MySQLStore, load_driver


def build_store(context: BackendContext) -> MySQLStore:
    """The factory behind `[session] backend = "mysql"`: settings checked, no I/O."""
    settings = context.parse(MySQLSettings)
    load_driver()
    return MySQLStore(settings)


def build_memory_store(context: BackendContext) -> MySQLMemoryStore:
    """The factory behind `[memory] backend = "mysql"`: the same `[backends.mysql]` settings."""
    settings = context.parse(MySQLSettings)
    load_driver()
    return MySQLMemoryStore(settings)


@hookimpl
def register_session_backends(register) -> None:
    register("mysql", build_store)


@hookimpl
def register_memory_backends(register) -> None:
    register("mysql", build_memory_store)


__all__ = ["MySQLMemoryStore", "MySQLSettings", "MySQLStore", "build_memory_store", "build_store"]
