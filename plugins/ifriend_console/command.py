"""`ifriend chat`: the console channel on the current settings, without `ifriend run`."""

from __future__ import annotations

import asyncio

import click

from ifriend.plugin_api import CliState

from .channel import ConsoleChannel


async def chat(state: CliState) -> None:
    app = state.app()
    channel = app.build_channel("console")
    async with app:
        try:
            await channel.serve()
        finally:
            await channel.close()


@click.command("chat")
@click.pass_obj
def chat_command(state: CliState) -> None:
    """Chat with the agent in the terminal (/new, /sessions, /quit)."""
    try:
        asyncio.run(chat(state))
    except KeyboardInterrupt:
        click.echo()
        raise click.exceptions.Exit(130) from None


__all__ = ["ConsoleChannel", "chat", "chat_command"]
