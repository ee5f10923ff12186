"""The hooks a plugin may implement.

pluggy calls hooks synchronously, so hooks register *factories*: the async
work (connecting, serving, closing) lives in the objects those factories build.
Every `register(name, factory)` call is checked when the App starts: a name
registered twice for the same kind is an error naming both plugins.

Implement a hook with `ifriend.plugin_api.hookimpl`::

    from ifriend.plugin_api import hookimpl

    @hookimpl
    def register_session_backends(register):
        register("sqlite", lambda context: SqliteStore(context.options["path"]))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

hookspec = pluggy.HookspecMarker("ifriend")
hookimpl = pluggy.HookimplMarker("ifriend")

Register = Callable[[str, Callable[..., Any]], None]


@hookspec
def register_session_backends(register: Register) -> None:
    """Register session backends by name, selectable as `[session] backend = "NAME"`.

    `register(name, factory)`; `factory(context: BackendContext)` returns either a
    `ifriend.sessions.SessionStore` (ifriend wraps it in its ADK `SessionService`,
    which adds validation, state scopes, stale-writer checks and spans) or any
    ADK `BaseSessionService`. The factory must not do I/O: the returned object's
    optional `async connect()` and `async close()` are called by the App.
    `context.options` is the `[backends.NAME]` table.
    """


@hookspec
def register_memory_backends(register: Register) -> None:
    """Register memory backends by name, selectable as `[memory] backend = "NAME"`.

    `register(name, factory)`; `factory(context: BackendContext)` returns either an
    `ifriend.memory.MemoryStore` (ifriend wraps it in its ADK `MemoryService`, which
    adds ADK's word matching, validation, ranking and spans) or any ADK
    `BaseMemoryService`. The factory must not do I/O: the returned object's optional
    `async connect()` and `async close()` are called by the App.
    `context.options` is the `[backends.NAME]` table.
    """


@hookspec
def register_channels(register: Register) -> None:
    """Register channels by name, enabled by a `[channels.NAME]` table.

    `register(name, factory)`; `factory(context: ChannelContext)` returns an object
    with `async serve()` (runs until cancelled) and optional `async close()`.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add subcommands to the `ifriend` command line: `@cli.command()` on your functions."""
