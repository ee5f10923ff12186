"""`[backends.redis] cluster`: the setting, and a wrong one failing loudly at start."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from ifriend import App, Settings
from ifriend.cli import create_cli
from ifriend.config import load_settings, parse_section
from ifriend.errors import ConfigError, TopologyError
from ifriend.sessions import SessionKey
from ifriend_redis import RedisMemoryStore, RedisSettings, RedisStore


def test_the_cluster_setting_comes_from_the_environment_as_a_bool() -> None:
    for text, expected in [("true", True), ("1", True), ("false", False), ("0", False)]:
        settings = load_settings(env={"IFRIEND__BACKENDS__REDIS__CLUSTER": text})
        parsed = parse_section(RedisSettings, settings.backends["redis"], key="backends.redis", settings=settings)
        assert parsed.cluster is expected, text
    settings = load_settings(env={"IFRIEND__BACKENDS__REDIS__CLUSTER": "maybe"})
    with pytest.raises(ConfigError) as caught:
        parse_section(RedisSettings, settings.backends["redis"], key="backends.redis", settings=settings)
    assert caught.value.key == "backends.redis.cluster"
    assert "IFRIEND__BACKENDS__REDIS__CLUSTER" in str(caught.value) and "boolean" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [("unix:///tmp/redis.sock", "unix://"), ("redis://127.0.0.1:7000/2", "database 0")],
)
def test_a_cluster_needs_a_tcp_url_to_database_0(url: str, expected: str) -> None:
    settings = Settings.model_validate({"backends": {"redis": {"url": url, "cluster": True}}})
    with pytest.raises(ConfigError, match=expected) as caught:
        parse_section(RedisSettings, settings.backends["redis"], key="backends.redis", settings=settings)
    assert caught.value.key == "backends.redis.cluster"
    assert RedisSettings(url="redis://127.0.0.1:7000", cluster=True).cluster


@pytest.mark.parametrize("cluster", [False, True], ids=["cluster-node-as-single", "single-as-cluster"])
async def test_a_wrong_topology_fails_connect_saying_what_to_set(
    cluster: bool, redis_url: str, redis_cluster_url: str
) -> None:
    url = redis_url if cluster else redis_cluster_url
    settings = RedisSettings(url=url, cluster=cluster)
    for store in (RedisStore(settings), RedisMemoryStore(settings)):
        try:
            with pytest.raises(TopologyError) as caught:
                await store.connect()
        finally:
            await store.close()
        message = str(caught.value)
        assert "key: backends.redis.cluster" in message
        if cluster:
            assert "cluster support disabled" in message and "cluster = false" in message
            assert "IFRIEND__BACKENDS__REDIS__CLUSTER=false" in message
        else:
            assert "is a Redis Cluster node" in message and "cluster = true" in message
            assert "IFRIEND__BACKENDS__REDIS__CLUSTER=true" in message


async def test_moved_without_cluster_is_the_topology_error_not_an_outage(redis_cluster_url: str) -> None:
    # a store that never connected (no check at start) learns it from the first MOVED
    store = RedisStore(RedisSettings(url=redis_cluster_url, key_prefix=f"ifriend-test-{uuid.uuid4().hex}"))
    try:
        with pytest.raises(TopologyError, match="is a Redis Cluster node"):
            for i in range(20):  # some keys are on the url's node; most are not
                await store.load(SessionKey("app", "user", f"s{i}"))
    finally:
        await store.close()


async def test_tiered_does_not_take_a_wrong_topology_for_an_outage(redis_cluster_url: str, mysql_url: str) -> None:
    settings = Settings.model_validate(
        {
            "session": {"backend": "tiered"},
            "backends": {
                "redis": {"url": redis_cluster_url, "key_prefix": f"ifriend-test-{uuid.uuid4().hex}"},
                "mysql": {"url": mysql_url, "table_prefix": f"ift_{uuid.uuid4().hex[:10]}_"},
            },
        }
    )
    with pytest.raises(TopologyError, match="IFRIEND__BACKENDS__REDIS__CLUSTER=true"):
        async with App(settings):
            pass
    from ifriend_bench.cleanup import drop_tables

    await drop_tables(mysql_url, settings.backends["mysql"]["table_prefix"])


def test_doctor_reports_the_wrong_topology_and_exits_1(
    redis_cluster_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "ifriend.toml"
    config.write_text(f'[session]\nbackend = "redis"\n\n[backends.redis]\nurl = "{redis_cluster_url}"\n')
    result = CliRunner().invoke(create_cli(), ["doctor", "--timeout", "5"], env={"IFRIEND_CONFIG": str(config)})
    assert result.exit_code == 1, result.output
    connect = next(line for line in result.stdout.splitlines() if line.startswith("connect"))
    assert "FAIL" in connect and "TopologyError" in connect
    assert "IFRIEND__BACKENDS__REDIS__CLUSTER=true" in connect
    result = CliRunner().invoke(
        create_cli(), ["doctor", "--timeout", "5"],
        env={"IFRIEND_CONFIG": str(config), "IFRIEND__BACKENDS__REDIS__CLUSTER": "true"},
    )
    assert result.exit_code == 0, result.output
