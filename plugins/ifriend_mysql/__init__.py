"""Built-in plugin: the `mysql` session backend (MySQL / MariaDB via asyncmy).

asyncmy is imported only when the store connects (or the backend is built),
so ifriend runs without the `mysql` extra until this backend is selected.
"""

from __future__ import annotations

from ifriend import BackendContext, hookimpl

from .settings import MySQLSettings
from .store import MySQLStore, load_driver


def build_store(context: BackendContext) -> MySQLStore:
    """The factory behind `[session] backend = "mysql"`: settings checked, no I/O."""
    settings = context.parse(MySQLSettings)
    load_driver()
    return MySQLStore(settings)


@hookimpl
def register_session_backends(register) -> None:
    register("mysql", build_store)


__all__ = ["MySQLSettings", "MySQLStore", "build_store"]
