"""`ifriend doctor`: connect an App, time a round trip to each backend and channel.

Every step becomes a `Check` (OK, FAIL or SKIP, with its latency); a step that fails
or outlives its timeout is a FAIL line whose detail has the settings' secrets masked.
`ifriend run` runs the same checks before it serves.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

from .app import App
from .errors import IfriendError, ProbeError, describe_error

PROBE_APP = "ifriend-doctor"
PROBE_USER = "doctor"
DEFAULT_TIMEOUT = 5.0

Redact = Callable[[str], str]


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


async def timed_check(
    name: str,
    backend: str,
    action: Callable[[], Awaitable[Any]],
    *,
    timeout: float,
    redact: Redact = lambda text: text,
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
            detail = redact(describe_error(exc))
        return Check(name, backend, "FAIL", elapsed, detail)
    return Check(name, backend, "OK", (time.perf_counter() - started) * 1000)


@asynccontextmanager
async def connected(
    app: App, checks: list[Check], *, timeout: float, redact: Redact
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


async def probe(app: App, *, timeout: float, redact: Redact) -> list[Check]:
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
    app: App, *, timeout: float = DEFAULT_TIMEOUT, redact: Redact = lambda text: text
) -> list[Check]:
    """Connect `app`, probe its services, close it: one `Check` per step."""
    checks: list[Check] = []
    async with connected(app, checks, timeout=timeout, redact=redact) as ok:
        if ok:
            checks.extend(await probe(app, timeout=timeout, redact=redact))
    checks.extend(await channel_checks(app, timeout=timeout, redact=redact))
    return checks


async def channel_checks(app: App, *, timeout: float, redact: Redact) -> list[Check]:
    """`channel_check` of every enabled channel that has a `ping()`."""
    checks = []
    for name in app.enabled_channels():
        check = await channel_check(app, name, timeout=timeout, redact=redact)
        if check is not None:
            checks.append(check)
    return checks


async def channel_check(app: App, name: str, *, timeout: float, redact: Redact) -> Check | None:
    """Channel `name`'s `ping()` (Slack: `auth.test`) as a check; None if it has none."""
    try:
        channel: Any = app.build_channel(name)
    except IfriendError as exc:
        return Check("channel ping", name, "FAIL", detail=redact(describe_error(exc)))
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


def format_checks(checks: Sequence[Check]) -> str:
    """The checks as an aligned table, with a last line saying how many failed."""
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
