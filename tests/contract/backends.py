"""The session backends the contract suite runs against, and the harness that opens them.

Add a backend with one `BACKENDS` entry. `settings()` returns the `Settings` fields that
select and configure it (called at test time, so it may read the environment); `needs`
names the environment variables of the servers it uses (`make test` sets them)::

    "redis": BackendSpec(
        settings=lambda: {
            "session": {"backend": "redis"},
            "backends": {"redis": {"url": os.environ["IFRIEND_TEST_REDIS_URL"]}},
        },
        needs=("IFRIEND_TEST_REDIS_URL",),
    ),

A backend whose servers are not configured is skipped locally and fails when `CI` is set.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from google.adk.sessions.base_session_service import BaseSessionService

from ifriend import App, Settings


@dataclass(frozen=True)
class BackendSpec:
    settings: Callable[[], dict[str, Any]]
    needs: tuple[str, ...] = ()


# One prefix per test run for everything the servers hold; `drop_server_data` removes it.
RUN_ID = uuid.uuid4().hex[:10]
REDIS_PREFIX = f"ifriend-contract-{RUN_ID}"
TABLE_PREFIX = f"ifc_{RUN_ID}_"


def _redis() -> dict[str, Any]:
    return {"url": os.environ["IFRIEND_TEST_REDIS_URL"], "key_prefix": REDIS_PREFIX}


def _redis_cluster() -> dict[str, Any]:
    url = os.environ["IFRIEND_TEST_REDIS_CLUSTER_URL"]
    return {"url": url, "cluster": True, "key_prefix": REDIS_PREFIX}


def _mysql(table_prefix: str = TABLE_PREFIX) -> dict[str, Any]:
    return {"url": os.environ["IFRIEND_TEST_MYSQL_URL"], "table_prefix": table_prefix}


BACKENDS: dict[str, BackendSpec] = {
    "memory": BackendSpec(settings=lambda: {"session": {"backend": "memory"}}),
    "redis": BackendSpec(
        settings=lambda: {"session": {"backend": "redis"}, "backends": {"redis": _redis()}},
        needs=("IFRIEND_TEST_REDIS_URL",),
    ),
    "mysql": BackendSpec(
        settings=lambda: {"session": {"backend": "mysql"}, "backends": {"mysql": _mysql()}},
        needs=("IFRIEND_TEST_MYSQL_URL",),
    ),
    "tiered": BackendSpec(
        settings=lambda: {
            "session": {"backend": "tiered"},
            "backends": {"redis": _redis(), "mysql": _mysql()},
        },
        needs=("IFRIEND_TEST_REDIS_URL", "IFRIEND_TEST_MYSQL_URL"),
    ),
    "redis-cluster": BackendSpec(
        settings=lambda: {"session": {"backend": "redis"}, "backends": {"redis": _redis_cluster()}},
        needs=("IFRIEND_TEST_REDIS_CLUSTER_URL",),
    ),
    "tiered-cluster": BackendSpec(
        settings=lambda: {
            "session": {"backend": "tiered"},
            # tables of their own: the repairs one tiered store records are not the other's
            "backends": {"redis": _redis_cluster(), "mysql": _mysql(f"{TABLE_PREFIX}c_")},
        },
        needs=("IFRIEND_TEST_REDIS_CLUSTER_URL", "IFRIEND_TEST_MYSQL_URL"),
    ),
}


async def drop_server_data(env: Mapping[str, str] | None = None) -> None:
    """Remove every key and table this run created (app and user state included)."""
    from ifriend_bench.cleanup import delete_redis_keys, drop_tables

    env = os.environ if env is None else env
    if env.get("IFRIEND_TEST_REDIS_URL"):
        await delete_redis_keys(env["IFRIEND_TEST_REDIS_URL"], REDIS_PREFIX)
    if env.get("IFRIEND_TEST_REDIS_CLUSTER_URL"):
        await delete_redis_keys(env["IFRIEND_TEST_REDIS_CLUSTER_URL"], REDIS_PREFIX, cluster=True)
    if env.get("IFRIEND_TEST_MYSQL_URL"):
        await drop_tables(env["IFRIEND_TEST_MYSQL_URL"], TABLE_PREFIX)


def in_ci(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return env.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_servers(name: str, spec: BackendSpec, env: Mapping[str, str] | None = None) -> None:
    """Skip (or, under CI, fail) the current test when `spec` lacks its servers."""
    env = os.environ if env is None else env
    missing = [var for var in spec.needs if not env.get(var)]
    if not missing:
        return
    reason = f"session backend {name!r} needs {', '.join(missing)} (`make test` sets it)"
    if in_ci(env):
        pytest.fail(f"{reason}; CI is set, so a missing server is a failure", pytrace=False)
    pytest.skip(reason)


def merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` applied, tables merged key by key."""
    result = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def build_settings(spec: BackendSpec, **overrides: Any) -> Settings:
    return Settings.model_validate(merged(spec.settings(), overrides))


class UniqueNames:
    """Hands out app names no other test (or run) uses, and remembers them for cleanup."""

    def __init__(self, label: str = "t") -> None:
        self.label = re.sub(r"[^A-Za-z0-9]+", "-", label)[:40].strip("-") or "t"
        self.apps: list[str] = []

    def __call__(self, suffix: str = "") -> str:
        return self.track(f"ct-{self.label}-{uuid.uuid4().hex[:12]}{suffix}")

    def track(self, app_name: str) -> str:
        """Remember an app name built by hand so its sessions are deleted at teardown."""
        if app_name not in self.apps:
            self.apps.append(app_name)
        return app_name


class Harness:
    """Opens services of one backend; `cleanup()` deletes every session of the tracked apps."""

    def __init__(self, name: str, spec: BackendSpec, stack: AsyncExitStack, label: str = "t"):
        self.name = name
        self.spec = spec
        self.names = UniqueNames(label)
        self.services: list[BaseSessionService] = []
        self._stack = stack

    async def open(self, **overrides: Any) -> BaseSessionService:
        """A session service built through `App`, closed when the harness's stack closes."""
        app = await self._stack.enter_async_context(App(build_settings(self.spec, **overrides)))
        self.services.append(app.session_service)
        return app.session_service

    async def cleanup(self) -> None:
        for service in self.services:
            for app_name in self.names.apps:
                listed = await service.list_sessions(app_name=app_name)
                for s in listed.sessions:
                    await service.delete_session(
                        app_name=app_name, user_id=s.user_id, session_id=s.id
                    )
