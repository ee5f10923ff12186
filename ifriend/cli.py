"""`ifriend ...`: thin commands over the modules that own the work.

`main()` builds a fresh command group, lets every installed plugin add commands
through the `register_commands` hook, then runs it. A plugin command can take
the CLI's state with `@click.pass_obj` (a `CliState`) and build the App from it::

    @hookimpl
    def register_commands(cli):
        @cli.command()
        @click.pass_obj
        def export(state):
            app = state.app()
            ...

Failures are reported without a traceback: a bad setting exits with 2, any
other `IfriendError` with 1. Secrets never reach the output.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from .cli_state import CliState
from .config import format_config, leaf_origins
from .doctor import DEFAULT_TIMEOUT, doctor, format_checks
from .errors import ConfigError, IfriendError, PluginError, describe_error
from .plugins import BUILTIN_DISTRIBUTION, build_plugin_manager, describe_plugins, format_plugins
from .serving import run
from .traces.command import traces_command


class CommandFailed(click.ClickException):
    """An `IfriendError` shown as `Error: ...` on stderr, with its own exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class IfriendGroup(click.Group):
    """The `ifriend` group: typed errors become messages, plugins cannot shadow commands."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise CommandFailed(f"configuration error: {_redact_for(ctx, str(exc))}", 2) from None
        except IfriendError as exc:
            raise CommandFailed(_redact_for(ctx, str(exc)), 1) from None

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, config_option_first(args))

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        name = name or cmd.name
        if name in self.commands:
            raise PluginError(f"a command named {name!r} already exists")
        super().add_command(cmd, name)


def config_option_first(args: Sequence[str]) -> list[str]:
    """`args` with `--config PATH` moved to the front, so that it may follow a subcommand
    (`ifriend doctor --config X`) as well as precede it."""
    moved: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if arg == "--config" and i + 1 < len(args):
            moved += args[i : i + 2]
            i += 2
            continue
        (moved if arg.startswith("--config=") else rest).append(arg)
        i += 1
    return moved + rest


def _redact_for(ctx: click.Context, text: str) -> str:
    state = ctx.find_object(CliState)
    return state.redact(text) if state is not None else text


def timeout_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`--timeout SECONDS`: how long each check may take."""
    return click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=DEFAULT_TIMEOUT,
        show_default=True,
        help="Seconds each check may take.",
    )(fn)


# --- the core commands ---------------------------------------------------------------------


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def plugins_command(state: CliState, as_json: bool) -> None:
    """List plugins, the hooks they implement and what they register."""
    pm = build_plugin_manager(block=state.settings().plugins.block, extra=state.plugins)
    infos = describe_plugins(pm, state.plugins)
    if as_json:
        click.echo(json.dumps({"plugins": [asdict(i) for i in infos]}, indent=2))
    else:
        click.echo(format_plugins(infos))


@click.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def config_command(state: CliState, as_json: bool) -> None:
    """Show the effective settings (secrets masked) and where each came from."""
    settings = state.settings()
    if as_json:
        data = {"source": settings.source, "settings": settings.effective(), "origins": leaf_origins(settings)}
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(format_config(settings))


@click.command("doctor")
@timeout_option
@click.pass_obj
def doctor_command(state: CliState, timeout: float) -> None:
    """Connect to the configured backends and time a round trip to each."""
    checks = asyncio.run(doctor(state.app(), timeout=timeout, redact=state.redact))
    click.echo(format_checks(checks))
    if not all(c.ok for c in checks):
        raise click.exceptions.Exit(1)


@click.command("run")
@timeout_option
@click.pass_obj
def run_command(state: CliState, timeout: float) -> None:
    """Start the bot: connect, check the backends, serve the enabled channels."""
    code = asyncio.run(run(state.app(), timeout=timeout, redact=state.redact, echo=click.echo))
    if code:
        raise click.exceptions.Exit(code)


@click.group("adk")
def adk_group() -> None:
    """ifriend's sessions and memory under ADK's own server (adk web, adk api_server)."""


@adk_group.command("init")
@click.argument("agents_dir", type=click.Path(exists=True, file_okay=False))
@click.pass_obj
def adk_init_command(state: CliState, agents_dir: str) -> None:
    """Write AGENTS_DIR/services.py, which registers the ifriend: scheme with ADK."""
    from . import adk

    path, written = adk.write_services_py(Path(agents_dir))
    click.echo(f"wrote {path}" if written else f"{path} already registers ifriend")
    click.echo("\n" + adk.server_commands(agents_dir, state.config_path))


CORE_COMMANDS = (plugins_command, config_command, doctor_command, run_command, adk_group, traces_command)


# --- the group -----------------------------------------------------------------------------


def create_cli() -> click.Group:
    """A fresh `ifriend` group with the core commands only (no plugin commands)."""

    @click.group(cls=IfriendGroup, context_settings={"help_option_names": ["-h", "--help"]})
    @click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="Settings file (default: $IFRIEND_CONFIG, else ./ifriend.toml if present); "
        "may also follow the subcommand.",
    )
    @click.version_option(package_name=BUILTIN_DISTRIBUTION, prog_name="ifriend")
    @click.pass_context
    def cli(ctx: click.Context, config_path: str | None) -> None:
        """Run a Google ADK agent as a chat bot, on a tiered session store."""
        given = ctx.obj if isinstance(ctx.obj, Mapping) else {}
        ctx.obj = CliState(config_path=config_path, plugins=tuple(given.get("plugins", ())))

    for command in CORE_COMMANDS:
        cli.add_command(command)
    return cli


def load_cli(plugins: Sequence[object] = ()) -> click.Group:
    """The group with core commands plus every plugin's, and `plugins` injected into commands.

    Settings are not known yet (the group's `--config` is not parsed), so nothing
    is blocked here. A plugin that breaks while adding commands costs its own
    commands only, with a warning: `ifriend plugins` and `doctor` must still work.
    """
    cli = create_cli()
    cli.context_settings["obj"] = {"plugins": list(plugins)}
    try:
        pm = build_plugin_manager(extra=plugins)
    except IfriendError as exc:
        _warn(f"plugin commands not loaded: {exc}")
        return cli
    for impl in pm.hook.register_commands.get_hookimpls():
        if inspect.iscoroutinefunction(impl.function):
            _warn(f"plugin {impl.plugin_name!r} implements register_commands as 'async def'")
            continue
        try:
            impl.function(**{arg: cli for arg in impl.argnames})
        except Exception as exc:  # a broken plugin must not take the CLI down
            _warn(f"plugin {impl.plugin_name!r} failed to add commands: {describe_error(exc)}")
    return cli


def main(args: Sequence[str] | None = None) -> None:
    """Entry point of the `ifriend` console script."""
    load_cli().main(args=args, prog_name="ifriend")


def _warn(message: str) -> None:
    click.echo(f"Warning: {message}", err=True)


if __name__ == "__main__":
    main()
