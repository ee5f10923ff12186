"""The shared test servers, and the one harness of the suites that run on every backend.

A server is named by an environment variable (`make test` starts it and sets it), reached
through a fixture, and marks the tests that use it (`pytest -m "not redis and not mysql"`
runs those that need none). A test whose server is not configured is skipped locally and
fails when `CI` is set.

A suite (sessions, memory) is a `Suite`: the backend table below, configured under a key and
a table prefix of this run, each backend a test parameter marked by the servers it needs,
everything the run wrote dropped after it. Add a backend with one entry in `Suite.backends`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from ifriend import App, Settings

if TYPE_CHECKING:
    from _pytest.mark.structures import ParameterSet


@dataclass(frozen=True)
class Server:
    variable: str
    fixture: str
    marker: str


REDIS = Server("IFRIEND_TEST_REDIS_URL", "redis_url", "redis")
REDIS_CLUSTER = Server("IFRIEND_TEST_REDIS_CLUSTER_URL", "redis_cluster_url", "redis")
MYSQL = Server("IFRIEND_TEST_MYSQL_URL", "mysql_url", "mysql")
SERVERS = (REDIS, REDIS_CLUSTER, MYSQL)
# Fixtures that start a server of the test's own: they need its binary, not the shared server.
PRIVATE_SERVER_FIXTURES = {"private_redis": "redis", "private_cluster": "redis", "private_mariadb": "mysql"}

RUN_ID = uuid.uuid4().hex[:10]


def in_ci(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return env.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_servers(what: str, variables: Iterable[str], env: Mapping[str, str] | None = None) -> None:
    """Skip (or, under CI, fail) the current test when a variable of `variables` is unset."""
    env = os.environ if env is None else env
    missing = [var for var in variables if not env.get(var)]
    if not missing:
        return
    reason = f"{what} needs {', '.join(missing)} (`make test` starts the servers and sets it)"
    if in_ci(env):
        pytest.fail(f"{reason}; CI is set, so a missing server is a failure", pytrace=False)
    pytest.skip(reason)


def server_url(variable: str) -> str:
    """The URL of a shared test server; skipped locally if unset, a failure under CI."""
    require_servers("this test", (variable,))
    return os.environ[variable]


def marks_of(variables: Collection[str]) -> list[pytest.MarkDecorator]:
    """The markers of the servers named by `variables`."""
    names = sorted({s.marker for s in SERVERS if s.variable in variables})
    return [getattr(pytest.mark, name) for name in names]


def mark_server_tests(items: Iterable[pytest.Item]) -> None:
    """Mark every test that uses a server's fixture (directly or through another fixture)."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        markers = {s.marker for s in SERVERS if s.fixture in used}
        markers.update(marker for name, marker in PRIVATE_SERVER_FIXTURES.items() if name in used)
        for marker in sorted(markers - {m.name for m in item.iter_markers()}):
            item.add_marker(marker)


def merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` applied, tables merged key by key."""
    result = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


@dataclass(frozen=True)
class BackendSpec:
    """`settings()` selects and configures a backend (called at test time, so it may read
    the environment); `needs` names the variables of the servers it uses."""

    settings: Callable[[], dict[str, Any]]
    needs: tuple[str, ...] = ()

    def build(self, **overrides: Any) -> Settings:
        return Settings.model_validate(merged(self.settings(), overrides))


class Suite:
    """The backends of one service (`session` or `memory`) under this run's prefixes."""

    def __init__(self, service: str, *, redis_prefix: str, table_prefix: str, only: Collection[str] = ()):
        self.redis_prefix = redis_prefix
        self.table_prefix = table_prefix
        table = self._table(service)
        self.backends: dict[str, BackendSpec] = {n: s for n, s in table.items() if not only or n in only}

    def _table(self, service: str) -> dict[str, BackendSpec]:
        def spec(backend: str, **stores: tuple[Server, Callable[[str], dict[str, Any]]]) -> BackendSpec:
            def settings() -> dict[str, Any]:
                tables = {name: options(os.environ[server.variable]) for name, (server, options) in stores.items()}
                return {service: {"backend": backend}, **({"backends": tables} if tables else {})}

            return BackendSpec(settings, needs=tuple(server.variable for server, _ in stores.values()))

        redis = (REDIS, lambda url: {"url": url, "key_prefix": self.redis_prefix})
        cluster = (REDIS_CLUSTER, lambda url: {"url": url, "cluster": True, "key_prefix": self.redis_prefix})
        mysql = (MYSQL, lambda url: {"url": url, "table_prefix": self.table_prefix})
        # tables of their own: the repairs one tiered store records are not the other's
        mysql_beside_cluster = (MYSQL, lambda url: {"url": url, "table_prefix": f"{self.table_prefix}c_"})
        return {
            "memory": spec("memory"),
            "redis": spec("redis", redis=redis),
            "mysql": spec("mysql", mysql=mysql),
            "tiered": spec("tiered", redis=redis, mysql=mysql),
            "redis-cluster": spec("redis", redis=cluster),
            "tiered-cluster": spec("tiered", redis=cluster, mysql=mysql_beside_cluster),
        }

    def params(self) -> list[ParameterSet]:
        """Each backend's name as a test parameter, marked by the servers it needs."""
        return [pytest.param(name, marks=marks_of(spec.needs), id=name) for name, spec in self.backends.items()]

    def require(self, name: str, env: Mapping[str, str] | None = None) -> BackendSpec:
        """The backend `name`, once its servers are known to be there (see `require_servers`)."""
        spec = self.backends[name]
        require_servers(f"backend {name!r}", spec.needs, env)
        return spec

    async def drop_server_data(self, env: Mapping[str, str] | None = None) -> None:
        """Remove every key and table this run created (app and user state included)."""
        from ifriend_bench.cleanup import delete_redis_keys, drop_tables

        env = os.environ if env is None else env
        if env.get(REDIS.variable):
            await delete_redis_keys(env[REDIS.variable], self.redis_prefix)
        if env.get(REDIS_CLUSTER.variable):
            await delete_redis_keys(env[REDIS_CLUSTER.variable], self.redis_prefix, cluster=True)
        if env.get(MYSQL.variable):
            await drop_tables(env[MYSQL.variable], self.table_prefix)


class BackendHarness:
    """Opens Apps of one backend, all closed with `stack`; `cleanup()` runs before that."""

    def __init__(self, name: str, spec: BackendSpec, stack: AsyncExitStack) -> None:
        self.name = name
        self.spec = spec
        self._stack = stack

    async def open_app(self, **overrides: Any) -> App:
        """An entered `App` of the backend, its settings overridden by `overrides`."""
        return await self._stack.enter_async_context(App(self.spec.build(**overrides)))

    async def cleanup(self) -> None:
        """Remove what the test wrote (nothing by default: its app names are its own)."""
