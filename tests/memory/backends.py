"""The memory backends the memory contract suite runs against, and the harness that opens them.

Like `tests/contract/backends.py` for sessions: one `BACKENDS` entry per backend, a key
prefix and a table prefix unique to this run (dropped after it), a backend whose servers
are not configured skipped locally and a failure when `CI` is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from google.adk.memory.base_memory_service import BaseMemoryService

from ifriend import App, Settings

from ..contract.backends import in_ci, merged


@dataclass(frozen=True)
class MemoryBackendSpec:
    settings: Callable[[], dict[str, Any]]
    needs: tuple[str, ...] = ()


RUN_ID = uuid.uuid4().hex[:10]
REDIS_PREFIX = f"ifriend-memory-{RUN_ID}"
TABLE_PREFIX = f"ifm_{RUN_ID}_"


def redis_options() -> dict[str, Any]:
    return {"url": os.environ["IFRIEND_TEST_REDIS_URL"], "key_prefix": REDIS_PREFIX}


def redis_cluster_options() -> dict[str, Any]:
    url = os.environ["IFRIEND_TEST_REDIS_CLUSTER_URL"]
    return {"url": url, "cluster": True, "key_prefix": REDIS_PREFIX}


def mysql_options() -> dict[str, Any]:
    return {"url": os.environ["IFRIEND_TEST_MYSQL_URL"], "table_prefix": TABLE_PREFIX}


BACKENDS: dict[str, MemoryBackendSpec] = {
    "memory": MemoryBackendSpec(settings=lambda: {"memory": {"backend": "memory"}}),
    "redis": MemoryBackendSpec(
        settings=lambda: {"memory": {"backend": "redis"}, "backends": {"redis": redis_options()}},
        needs=("IFRIEND_TEST_REDIS_URL",),
    ),
    "mysql": MemoryBackendSpec(
        settings=lambda: {"memory": {"backend": "mysql"}, "backends": {"mysql": mysql_options()}},
        needs=("IFRIEND_TEST_MYSQL_URL",),
    ),
    "redis-cluster": MemoryBackendSpec(
        settings=lambda: {
            "memory": {"backend": "redis"},
            "backends": {"redis": redis_cluster_options()},
        },
        needs=("IFRIEND_TEST_REDIS_CLUSTER_URL",),
    ),
}


async def drop_server_data(env: Mapping[str, str] | None = None) -> None:
    """Remove every key and table this run created."""
    from ifriend_bench.cleanup import delete_redis_keys, drop_tables

    env = os.environ if env is None else env
    if env.get("IFRIEND_TEST_REDIS_URL"):
        await delete_redis_keys(env["IFRIEND_TEST_REDIS_URL"], REDIS_PREFIX)
    if env.get("IFRIEND_TEST_REDIS_CLUSTER_URL"):
        await delete_redis_keys(env["IFRIEND_TEST_REDIS_CLUSTER_URL"], REDIS_PREFIX, cluster=True)
    if env.get("IFRIEND_TEST_MYSQL_URL"):
        await drop_tables(env["IFRIEND_TEST_MYSQL_URL"], TABLE_PREFIX)


def require_servers(name: str, spec: MemoryBackendSpec) -> None:
    """Skip (or, under CI, fail) the current test when `spec` lacks its servers."""
    missing = [var for var in spec.needs if not os.environ.get(var)]
    if not missing:
        return
    reason = f"memory backend {name!r} needs {', '.join(missing)} (`make test` sets it)"
    if in_ci():
        pytest.fail(f"{reason}; CI is set, so a missing server is a failure", pytrace=False)
    pytest.skip(reason)


def build_settings(spec: MemoryBackendSpec, **overrides: Any) -> Settings:
    return Settings.model_validate(merged(spec.settings(), overrides))


class MemoryHarness:
    """Opens memory services of one backend through `App`; all closed with the stack."""

    def __init__(self, name: str, spec: MemoryBackendSpec, stack: AsyncExitStack) -> None:
        self.name = name
        self.spec = spec
        self._stack = stack

    async def open(self, **overrides: Any) -> BaseMemoryService:
        app = await self._stack.enter_async_context(App(build_settings(self.spec, **overrides)))
        return app.memory_service

    @staticmethod
    def app_name(label: str = "m") -> str:
        """An app name no other test (or run) uses: tests never see each other's memory."""
        return f"mt-{label}-{uuid.uuid4().hex[:12]}"
