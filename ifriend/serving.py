"""`ifriend run`: describe and check the App, then serve every enabled channel together.

The run ends when every channel's `serve()` has returned, on Ctrl-C or SIGTERM, or
when a channel crashes (`ChannelCrashedError`, exit status 1); the channels are
closed whatever the reason.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from .agent import describe_agent
from .app import App, Channel
from .doctor import DEFAULT_TIMEOUT, Check, Redact, channel_checks, connected, format_checks, probe
from .errors import ChannelCrashedError, UnknownNameError
from .gc_tuning import tune_gc

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT = 10.0


async def run(
    app: App,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    redact: Redact = lambda text: text,
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
            if app.settings.app.tune_gc:
                tune_gc()
            await serve_channels(channels, echo=echo)
    if checks[-1].name == "close" and not checks[-1].ok:
        echo(format_checks(checks[-1:]))
    return 0 if all(c.ok for c in checks) else 1


def describe_app(app: App) -> str:
    """What `app` is made of: settings file, backends and their plugins, channels, agent."""
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


def build_channels(app: App) -> dict[str, Channel]:
    """Every enabled channel, built (no I/O yet); unknown names and bad options fail here."""
    channels: dict[str, Channel] = {}
    for name in app.enabled_channels():
        if name not in app.channels:
            raise UnknownNameError(
                f"[channels.{name}] is configured, but no plugin registers a channel named "
                f"{name!r}. Registered: {app.channels.describe() or 'none'}"
            )
        channels[name] = app.build_channel(name)
    return channels


async def serve_channels(
    channels: Mapping[str, Channel], *, echo: Callable[[str], None] = print
) -> None:
    """Serve `channels` concurrently until all return, a stop signal, or a crash; close them."""
    if not channels:
        echo("No channel is enabled (add a [channels.NAME] table to the settings): nothing to serve.")
        return
    stop = asyncio.Event()
    tasks = {
        asyncio.create_task(channel.serve(), name=f"ifriend channel {name}"): name
        for name, channel in channels.items()
    }
    stopping = asyncio.create_task(stop.wait())
    crashed: tuple[str, BaseException] | None = None
    with _stop_on_signals(stop):
        try:
            pending = set(tasks)
            while pending and crashed is None:
                done, _ = await asyncio.wait({*pending, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if stopping in done:
                    echo("Stopping.")
                    break
                for task in done:
                    pending.discard(task)
                    error = None if task.cancelled() else task.exception()
                    if error is not None:
                        crashed = (tasks[task], error)
                    elif pending:
                        names = ", ".join(sorted(tasks[t] for t in pending))
                        echo(f"Channel {tasks[task]} finished; still serving: {names}.")
        finally:
            stopping.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(stopping, *tasks, return_exceptions=True)
            await _close_all(channels)
    if crashed is not None:
        name, error = crashed
        logger.error("channel %s crashed", name, exc_info=error)
        raise ChannelCrashedError(f"channel {name!r} crashed: {type(error).__name__}: {error}")


async def _close_all(channels: Mapping[str, Channel]) -> None:
    for name, channel in channels.items():
        close = getattr(channel, "close", None)
        if close is None:
            continue
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await close()
        except Exception:
            logger.exception("channel %s failed to close", name)


@contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set `stop` (where the loop can take signals: main thread, POSIX)."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):
            continue
        installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
