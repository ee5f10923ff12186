"""Fixtures of the ADK-server tests: an agents folder on `ifriend-echo`, an ifriend.toml on the
shared Redis and MariaDB (a key and table prefix per test, dropped after), and ifriend.adk's
process-wide state reset around each test."""

from __future__ import annotations

import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import ifriend.adk
from ifriend_bench.cleanup import delete_redis_keys, drop_tables

from .agents import AGENT, AGENT_PY


@pytest.fixture
def agents_dir(tmp_path: Path) -> Path:
    """`agents/` with `services.py` (as `ifriend adk init` writes it) and one echo agent."""
    agents = tmp_path / "agents"
    (agents / AGENT).mkdir(parents=True)
    (agents / "services.py").write_text(ifriend.adk.SERVICES_PY)
    (agents / AGENT / "__init__.py").write_text("from . import agent\n")
    (agents / AGENT / "agent.py").write_text(AGENT_PY)
    return agents


@pytest.fixture
async def tiered_config(tmp_path: Path, redis_url: str, mysql_url: str) -> AsyncIterator[Path]:
    """An ifriend.toml: sessions on `tiered`, memory on `mysql`, under this test's prefixes."""
    run = uuid.uuid4().hex[:10]
    redis_prefix, mysql_prefix = f"ifriend-test-{run}", f"ift_{run}_"
    path = tmp_path / "ifriend.toml"
    path.write_text(
        f"""\
[app]
name = "{AGENT}"

[session]
backend = "tiered"

[memory]
backend = "mysql"

[backends.redis]
url = "{redis_url}"
key_prefix = "{redis_prefix}"

[backends.mysql]
url = "{mysql_url}"
table_prefix = "{mysql_prefix}"
"""
    )
    try:
        yield path
    finally:
        await ifriend.adk.close()
        await drop_tables(mysql_url, mysql_prefix)
        await delete_redis_keys(redis_url, redis_prefix)


@pytest.fixture(autouse=True)
async def fresh_adk_state(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """Each test starts with no shared services and leaves none behind (closed), nor its
    SIGTERM handler."""
    monkeypatch.setattr(ifriend.adk, "_shared", {})
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        await ifriend.adk.close()
        signal.signal(signal.SIGTERM, sigterm)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The test runs in `tmp_path`, without IFRIEND_CONFIG."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IFRIEND_CONFIG", raising=False)
    yield tmp_path
