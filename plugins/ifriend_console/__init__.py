"""Built-in plugin: the `console` channel and the `ifriend chat` command.

`ifriend chat` talks to the configured agent in the terminal; `[channels.console]`
(enabled in the shipped ifriend.toml) makes `ifriend run` open the same chat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ifriend.plugin_api import hookimpl

from .settings import ConsoleSettings

if TYPE_CHECKING:
    import click

    from ifriend.plugin_api import ChannelContext


def _console_channel(context: ChannelContext) -> Any:
    from .channel import ConsoleChannel

    return ConsoleChannel(context, context.parse(ConsoleSettings))


@hookimpl
def register_channels(register: Any) -> None:
    register("console", _console_channel)


@hookimpl
def register_commands(cli: click.Group) -> None:
    from .command import chat_command

    cli.add_command(chat_command)


__all__ = ["ConsoleSettings"]
