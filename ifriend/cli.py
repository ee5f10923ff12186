"""`ifriend ...`: inspect plugins and settings, check the backends, run the bot.

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
import dataclasses
import inspect
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict, dataclass, field
from importlib.metadata import entry_points
from typing import Any

import click
import pluggy

from .agent import describe_agent
from .app import App
from .config import Settings, load_settings, redact, secret_values
from .errors import ConfigError, IfriendError, PluginError
from .plugins import ENTRY_POINT_GROUP, build_plugin_manager, collect, plugin_origin
from .telemetry.command import traces_command
from .serving import build_channels, serve_channels

BUILTIN_DISTRIBUTION = "ifriend"
PROBE_APP = "ifriend-doctor"
PROBE_USER = "doctor"
DEFAULT_TIMEOUT = 5.0

# Registering hook -> (kind as `collect` names it, key in `ifriend plugins --json`).
REGISTERING_HOOKS: dict[str, tuple[str, str]] = {
    "register_session_backends": ("session backend", "session_backends"),
    "register_memory_backends": ("memory backend", "memory_backends"),
    "register_channels": ("channel", "channels"),
}
REGISTRATION_KEYS = [key for _, key in REGISTERING_HOOKS.values()]


# --- state shared by every command -------------------------------------------------------


@dataclass
class CliState:
    """What the `ifriend` group hands its commands (`@click.pass_obj`).

    `plugins` are extra plugin objects registered next to the installed ones
    (tests pass them as `invoke(cli, args, obj={"plugins": [...]})`).
    """

    config_path: str | None = None
    plugins: tuple[object, ...] = ()
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        """The settings, loaded once; `ConfigError` if any is bad."""
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    def app(self) -> App:
        """A new, not yet connected App built from the settings."""
        return App(self.settings(), plugins=self.plugins)

    def redact(self, text: str) -> str:
        """`text` with every secret of the loaded settings masked."""
        if self._settings is None:
            return text
        return redact(text, secret_values(self._settings))


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


# --- the command group ---------------------------------------------------------------------


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

    @cli.command("plugins")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_obj
    def plugins_command(state: CliState, as_json: bool) -> None:
        """List plugins, the hooks they implement and what they register."""
        settings = state.settings()
        pm = build_plugin_manager(block=settings.plugins.block, extra=state.plugins)
        infos = describe_plugins(pm, state.plugins)
        if as_json:
            click.echo(json.dumps({"plugins": [asdict(i) for i in infos]}, indent=2))
        else:
            click.echo(format_plugins(infos))

    @cli.command("config")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_obj
    def config_command(state: CliState, as_json: bool) -> None:
        """Show the effective settings (secrets masked) and where each came from."""
        settings = state.settings()
        if as_json:
            data = {
                "source": settings.source,
                "settings": settings.effective(),
                "origins": leaf_origins(settings),
            }
            click.echo(json.dumps(data, indent=2))
        else:
            click.echo(format_config(settings))

    @cli.command("doctor")
    @_timeout_option
    @click.pass_obj
    def doctor_command(state: CliState, timeout: float) -> None:
        """Connect to the configured backends and time a round trip to each."""
        checks = asyncio.run(doctor(state.app(), timeout=timeout, redact=state.redact))
        click.echo(format_checks(checks))
        if not all(c.ok for c in checks):
            raise click.exceptions.Exit(1)

    @cli.command("run")
    @_timeout_option
    @click.pass_obj
    def run_command(state: CliState, timeout: float) -> None:
        """Start the bot: connect, check the backends, serve the enabled channels."""
        code = asyncio.run(run(state.app(), timeout=timeout, redact=state.redact, echo=click.echo))
        if code:
            raise click.exceptions.Exit(code)

    @cli.group("bench")
    def bench_group() -> None:
        """Benchmarks against baselines measured in the same run (needs `make servers`)."""

    @bench_group.command("sessions")
    @click.option("--redis-url", envvar="IFRIEND_TEST_REDIS_URL", required=True,
                  help="Redis to use [env IFRIEND_TEST_REDIS_URL].")
    @click.option("--mysql-url", envvar="IFRIEND_TEST_MYSQL_URL", required=True,
                  help="MariaDB/MySQL to use [env IFRIEND_TEST_MYSQL_URL].")
    @click.option("--redis-cluster-url", envvar="IFRIEND_TEST_REDIS_CLUSTER_URL", default=None,
                  help="A Redis Cluster node: adds redis-cluster and tiered-cluster "
                  "[env IFRIEND_TEST_REDIS_CLUSTER_URL].")
    @click.option("--quick", is_flag=True, help="A tiny run that exercises every figure.")
    @click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
                  help="Where to write the JSON report (default perf/results/sessions-TIME.json).")
    def bench_sessions_command(
        redis_url: str, mysql_url: str, redis_cluster_url: str | None, quick: bool, json_path: str | None
    ) -> None:
        """Session backends vs ADK's DatabaseSessionService and InMemorySessionService."""
        from pathlib import Path

        from .bench import sessions

        config = (sessions.BenchConfig.quick if quick else sessions.BenchConfig)(
            redis_url, mysql_url, redis_cluster_url
        )
        report = asyncio.run(
            sessions.run(config, progress=lambda step: click.echo(f"measuring {step}...", err=True))
        )
        click.echo(report.table(sessions.BASELINES))
        click.echo()
        click.echo(report.check_lines())
        for note in report.notes:
            click.echo(f"note: {note}")
        path = Path(json_path or f"perf/results/sessions-{time.strftime('%Y%m%d-%H%M%S')}.json")
        report.write(path)
        click.echo(f"wrote {path}")

    @bench_group.command("memory")
    @click.option("--redis-url", envvar="IFRIEND_TEST_REDIS_URL", required=True,
                  help="Redis to use [env IFRIEND_TEST_REDIS_URL].")
    @click.option("--mysql-url", envvar="IFRIEND_TEST_MYSQL_URL", required=True,
                  help="MariaDB/MySQL to use [env IFRIEND_TEST_MYSQL_URL].")
    @click.option("--entries", type=click.IntRange(min=1), default=10_000, show_default=True,
                  help="Memories of the user whose searches are timed.")
    @click.option("--quick", is_flag=True, help="A tiny run that exercises every figure.")
    @click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
                  help="Where to write the JSON report (default perf/results/memory-TIME.json).")
    def bench_memory_command(
        redis_url: str, mysql_url: str, entries: int, quick: bool, json_path: str | None
    ) -> None:
        """Memory backends vs ADK's InMemoryMemoryService: add and search, p50/p99."""
        from pathlib import Path

        from .bench import memory as bench_memory

        if quick:
            config = bench_memory.BenchConfig.quick(redis_url, mysql_url)
        else:
            config = bench_memory.BenchConfig(redis_url, mysql_url, entries=entries)
        report = asyncio.run(
            bench_memory.run(config, progress=lambda step: click.echo(f"{step}...", err=True))
        )
        click.echo(report.table((bench_memory.BASELINE,)))
        click.echo()
        click.echo(report.check_lines())
        for note in report.notes:
            click.echo(f"note: {note}")
        path = Path(json_path or f"perf/results/memory-{time.strftime('%Y%m%d-%H%M%S')}.json")
        report.write(path)
        click.echo(f"wrote {path}")

    @bench_group.command("turn")
    @click.option("--redis-url", envvar="IFRIEND_TEST_REDIS_URL", required=True,
                  help="Redis to use [env IFRIEND_TEST_REDIS_URL].")
    @click.option("--mysql-url", envvar="IFRIEND_TEST_MYSQL_URL", required=True,
                  help="MariaDB/MySQL to use [env IFRIEND_TEST_MYSQL_URL].")
    @click.option("--turns", type=click.IntRange(min=2), default=100, show_default=True,
                  help="Turns per thread.")
    @click.option("--threads", type=click.IntRange(min=1), default=3, show_default=True,
                  help="Threads per backend.")
    @click.option("--backend", "backends", multiple=True,
                  type=click.Choice(["memory", "redis", "mysql", "tiered"]),
                  help="Backends to measure (repeatable; default all).")
    @click.option("--quick", is_flag=True, help="A tiny run that exercises every figure.")
    @click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
                  help="Where to write the JSON report (default perf/results/turn-TIME.json).")
    def bench_turn_command(
        redis_url: str, mysql_url: str, turns: int, threads: int, backends: tuple[str, ...],
        quick: bool, json_path: str | None,
    ) -> None:
        """A Slack turn end to end (signed event in -> reply at a fake Slack), per backend."""
        from pathlib import Path

        from .bench import turn as bench_turn

        if quick:
            config = bench_turn.BenchConfig.quick(redis_url, mysql_url)
        else:
            last = min(10, max(1, turns // 10))
            config = bench_turn.BenchConfig(redis_url, mysql_url, turns=turns, threads=threads, last=last)
        if backends:
            config = dataclasses.replace(config, backends=backends)
        report = asyncio.run(
            bench_turn.run(config, progress=lambda step: click.echo(f"measuring {step}...", err=True))
        )
        click.echo(report.table(()))
        click.echo()
        click.echo(report.check_lines())
        for note in report.notes:
            click.echo(f"note: {note}")
        path = Path(json_path or f"perf/results/turn-{time.strftime('%Y%m%d-%H%M%S')}.json")
        report.write(path)
        click.echo(f"wrote {path}")

    @cli.group("adk")
    def adk_group() -> None:
        """ifriend's sessions and memory under ADK's own server (adk web, adk api_server)."""

    @adk_group.command("init")
    @click.argument("agents_dir", type=click.Path(exists=True, file_okay=False))
    @click.pass_obj
    def adk_init_command(state: CliState, agents_dir: str) -> None:
        """Write AGENTS_DIR/services.py, which registers the ifriend: scheme with ADK."""
        from pathlib import Path

        from . import adk

        path, written = adk.write_services_py(Path(agents_dir))
        click.echo(f"wrote {path}" if written else f"{path} already registers ifriend")
        click.echo("\n" + adk.server_commands(agents_dir, state.config_path))

    cli.add_command(traces_command)
    return cli


def _timeout_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=DEFAULT_TIMEOUT,
        show_default=True,
        help="Seconds each check may take.",
    )(fn)


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
            _warn(f"plugin {impl.plugin_name!r} failed to add commands: {_describe(exc)}")
    return cli


def main(args: Sequence[str] | None = None) -> None:
    """Entry point of the `ifriend` console script."""
    load_cli().main(args=args, prog_name="ifriend")


def _warn(message: str) -> None:
    click.echo(f"Warning: {message}", err=True)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- ifriend plugins -------------------------------------------------------------------------


@dataclass
class PluginInfo:
    """One plugin as `ifriend plugins` shows it."""

    name: str
    origin: str
    installed: bool
    builtin: bool
    blocked: bool
    hooks: list[str]
    registers: dict[str, list[str]]


def describe_plugins(pm: pluggy.PluginManager, extra: Sequence[object] = ()) -> list[PluginInfo]:
    """Every plugin of `pm` (blocked ones too), sorted by name."""
    registered: dict[str, dict[str, list[str]]] = {}
    for hook, (kind, key) in REGISTERING_HOOKS.items():
        for registration in collect(pm, hook, kind):
            by_kind = registered.setdefault(registration.plugin, {})
            by_kind.setdefault(key, []).append(registration.name)
    distributions = {id(plugin): dist.project_name for plugin, dist in pm.list_plugin_distinfo()}
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            infos.append(_blocked_plugin(pm, name, extra))
            continue
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        infos.append(
            PluginInfo(
                name=name,
                origin=plugin_origin(pm, plugin),
                installed=True,
                builtin=_is_builtin(distributions.get(id(plugin))),
                blocked=False,
                hooks=hooks,
                registers={key: registered.get(name, {}).get(key, []) for key in REGISTRATION_KEYS},
            )
        )
    return sorted(infos, key=lambda i: i.name)


def _blocked_plugin(pm: pluggy.PluginManager, name: str, extra: Sequence[object]) -> PluginInfo:
    dist = next((ep.dist for ep in entry_points(group=ENTRY_POINT_GROUP, name=name) if ep.dist), None)
    injected = next((p for p in extra if pm.get_canonical_name(p) == name), None)
    if dist is not None:
        origin = f"{dist.name}=={dist.version}"
    elif injected is not None:
        origin = getattr(injected, "__name__", None) or type(injected).__module__
    else:
        origin = "not installed"
    return PluginInfo(
        name=name,
        origin=origin,
        installed=dist is not None or injected is not None,
        builtin=_is_builtin(dist.name if dist is not None else None),
        blocked=True,
        hooks=[],
        registers={key: [] for key in REGISTRATION_KEYS},
    )


def _is_builtin(distribution: str | None) -> bool:
    return distribution is not None and _normalize(distribution) == BUILTIN_DISTRIBUTION


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def format_plugins(infos: Sequence[PluginInfo]) -> str:
    if not infos:
        return "no plugins"
    lines = []
    for info in infos:
        tags = ["built-in" if info.builtin else "third-party"] if info.installed else []
        tags += ["blocked"] if info.blocked else []
        source = f"from {info.origin}" if info.installed else info.origin
        lines.append(f"{info.name}  ({', '.join([*tags, source])})")
        if info.blocked:
            lines.append("  blocked by [plugins] block: not loaded")
            continue
        lines.append(f"  hooks: {', '.join(info.hooks) or 'none'}")
        for key in REGISTRATION_KEYS:
            names = info.registers.get(key, [])
            lines.append(f"  {key.replace('_', ' ')}: {', '.join(names) or '-'}")
    return "\n".join(lines)


# --- ifriend config --------------------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def leaf_origins(settings: Settings) -> dict[str, str]:
    """Dotted path of every leaf of the effective settings -> where it came from."""
    return {
        ".".join(path): settings.origin(*path) for path, _ in _leaves(settings.effective(), ())
    }


def _leaves(data: Mapping[str, Any], prefix: tuple[str, ...]) -> Iterable[tuple[tuple[str, ...], Any]]:
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def format_config(settings: Settings) -> str:
    """The effective settings as TOML, each value commented with its origin."""
    rows: list[tuple[str, str | None]] = [(f"# settings file: {settings.source}", None)]
    _toml_rows(settings.effective(), (), settings, rows)
    width = max((len(text) for text, comment in rows if comment is not None), default=0)
    return "\n".join(
        text if comment is None else f"{text.ljust(width)}  # {comment}" for text, comment in rows
    )


def _toml_rows(
    table: Mapping[str, Any],
    path: tuple[str, ...],
    settings: Settings,
    rows: list[tuple[str, str | None]],
) -> None:
    scalars = [(k, v) for k, v in table.items() if not isinstance(v, Mapping)]
    subtables = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
    if path and (scalars or not subtables):
        rows.append(("", None))
        rows.append((f"[{'.'.join(_toml_key(p) for p in path)}]", None))
    for key, value in scalars:
        origin = settings.origin(*path, key)
        if value is None:
            rows.append((f"# {_toml_key(key)} is not set", origin))
        else:
            rows.append((f"{_toml_key(key)} = {_toml_value(value)}", origin))
    for key, value in subtables:
        _toml_rows(value, (*path, key), settings, rows)


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{" + inner + "}"
    if value is None:
        return '""'
    return json.dumps(str(value), ensure_ascii=False)


# --- ifriend doctor / run -------------------------------------------------------------------------


@dataclass
class Check:
    """One line of the doctor's table."""

    name: str
    backend: str
    status: str  # "OK", "FAIL" or "SKIP"
    latency_ms: float | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "FAIL"


class ProbeError(IfriendError):
    """A backend answered, but not what the probe expected."""


async def timed_check(
    name: str,
    backend: str,
    action: Callable[[], Awaitable[Any]],
    *,
    timeout: float,
    redact: Callable[[str], str] = lambda text: text,
) -> Check:
    """Run `action` under `timeout` and time it; its failure becomes a FAIL line."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout) as deadline:
            await action()
    except Exception as exc:
        elapsed = (time.perf_counter() - started) * 1000
        if isinstance(exc, TimeoutError) and deadline.expired():
            detail = f"TimeoutError: no answer within {timeout:g} s"
        else:
            detail = redact(_describe(exc))
        return Check(name, backend, "FAIL", elapsed, detail)
    return Check(name, backend, "OK", (time.perf_counter() - started) * 1000)


@asynccontextmanager
async def connected(
    app: App, checks: list[Check], *, timeout: float, redact: Callable[[str], str]
) -> AsyncIterator[bool]:
    """Enter `app` as a timed `connect` check; yield whether it connected; close as a check."""
    backends = f"{app.settings.session.backend} + {app.settings.memory.backend}"
    connect = await timed_check("connect", backends, app.__aenter__, timeout=timeout, redact=redact)
    checks.append(connect)
    if not connect.ok:
        yield False
        return
    try:
        yield True
    finally:

        async def close() -> None:
            await app.__aexit__(None, None, None)

        checks.append(await timed_check("close", backends, close, timeout=timeout, redact=redact))


async def probe(app: App, *, timeout: float, redact: Callable[[str], str]) -> list[Check]:
    """Ping, round trip and search on the services of a connected App."""
    sessions, memory = app.session_service, app.memory_service
    session_backend, memory_backend = app.settings.session.backend, app.settings.memory.backend
    checks = []
    ping = getattr(sessions, "ping", None)
    if callable(ping):
        checks.append(
            await timed_check("session ping", session_backend, ping, timeout=timeout, redact=redact)
        )
    else:
        checks.append(Check("session ping", session_backend, "SKIP", detail="no ping()"))

    async def round_trip() -> None:
        await session_round_trip(sessions)

    async def search() -> None:
        await memory.search_memory(app_name=PROBE_APP, user_id=PROBE_USER, query="ifriend doctor")

    checks.append(
        await timed_check(
            "session round trip", session_backend, round_trip, timeout=timeout, redact=redact
        )
    )
    checks.append(
        await timed_check("memory search", memory_backend, search, timeout=timeout, redact=redact)
    )
    return checks


async def session_round_trip(service: Any) -> None:
    """Create a probe session, read it back, delete it."""
    ids = {"app_name": PROBE_APP, "user_id": PROBE_USER, "session_id": f"probe-{uuid.uuid4().hex}"}
    await service.create_session(**ids)
    try:
        found = await service.get_session(**ids)
    except Exception:
        with suppress(Exception):
            await service.delete_session(**ids)
        raise
    await service.delete_session(**ids)
    if found is None or found.id != ids["session_id"]:
        raise ProbeError("the session just created could not be read back")


async def doctor(
    app: App, *, timeout: float = DEFAULT_TIMEOUT, redact: Callable[[str], str] = lambda t: t
) -> list[Check]:
    """Connect `app`, probe its services, close it: one `Check` per step."""
    checks: list[Check] = []
    async with connected(app, checks, timeout=timeout, redact=redact) as ok:
        if ok:
            checks.extend(await probe(app, timeout=timeout, redact=redact))
    checks.extend(await channel_checks(app, timeout=timeout, redact=redact))
    return checks


async def channel_checks(app: App, *, timeout: float, redact: Callable[[str], str]) -> list[Check]:
    """`channel_check` of every enabled channel that has a `ping()`."""
    checks = []
    for name in app.enabled_channels():
        check = await channel_check(app, name, timeout=timeout, redact=redact)
        if check is not None:
            checks.append(check)
    return checks


async def channel_check(
    app: App, name: str, *, timeout: float, redact: Callable[[str], str]
) -> Check | None:
    """Channel `name`'s `ping()` (Slack: `auth.test`) as a check; None if it has none."""
    try:
        channel: Any = app.build_channel(name)
    except IfriendError as exc:
        return Check("channel ping", name, "FAIL", detail=redact(_describe(exc)))
    if not callable(getattr(channel, "ping", None)):
        return None
    said: list[str] = []

    async def ping() -> None:
        try:
            said.append(str(await channel.ping()))
        finally:
            if callable(getattr(channel, "close", None)):
                await channel.close()

    check = await timed_check("channel ping", name, ping, timeout=timeout, redact=redact)
    if said:
        check.detail = redact(said[0])
    return check


async def run(
    app: App,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    redact: Callable[[str], str] = lambda t: t,
    echo: Callable[[str], None] = print,
) -> int:
    """Describe, connect and check `app`, then serve its channels; the exit code."""
    echo(describe_app(app))
    channels = build_channels(app)
    checks: list[Check] = []
    async with connected(app, checks, timeout=timeout, redact=redact) as ok:
        if ok:
            checks.extend(await probe(app, timeout=timeout, redact=redact))
            checks.extend(await channel_checks(app, timeout=timeout, redact=redact))
        echo(format_checks(checks))
        if all(c.ok for c in checks):
            await serve_channels(channels, echo=echo)
    if checks[-1].name == "close" and not checks[-1].ok:
        echo(format_checks(checks[-1:]))
    return 0 if all(c.ok for c in checks) else 1


def describe_app(app: App) -> str:
    s = app.settings
    session = app.session_backends.get(s.session.backend)
    memory = app.memory_backends.get(s.memory.backend)
    return "\n".join(
        [
            f"app: {s.app.name}",
            f"settings file: {s.source}",
            f"session backend: {session.name} (from plugin {session.plugin})",
            f"memory backend: {memory.name} (from plugin {memory.plugin})",
            f"channels registered: {app.channels.describe() or 'none'}",
            f"channels enabled: {', '.join(app.enabled_channels()) or 'none'}",
            f"agent: {describe_agent(app.agent)} from {app.settings.app.agent or 'ifriend.assistant'}",
        ]
    )


def format_checks(checks: Sequence[Check]) -> str:
    header = ("CHECK", "BACKEND", "RESULT", "LATENCY", "DETAIL")
    rows = [header] + [
        (
            c.name,
            c.backend,
            c.status,
            "-" if c.latency_ms is None else f"{c.latency_ms:.2f} ms",
            c.detail,
        )
        for c in checks
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in rows
    ]
    failed = sum(not c.ok for c in checks)
    lines.append(f"{failed} of {len(checks)} checks failed" if failed else "all checks passed")
    return "\n".join(line.rstrip() for line in lines)


if __name__ == "__main__":
    main()
