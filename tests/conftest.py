"""Fixtures of every test: captured spans and metrics, the shared and the private servers, and
the markers of the tests that need a server (`tests/backends.py`)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from . import captured
from .backends import MYSQL, REDIS, REDIS_CLUSTER, mark_server_tests, server_url
from .captured import MetricPoints
from .servers import PrivateCluster, PrivateRedis


def pytest_configure(config: pytest.Config) -> None:
    captured.install()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_server_tests(items)


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    """`ifriend run` tunes the garbage collector (`tune_gc`): undone after each test."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans finished during the test (the exporter is emptied before it)."""
    captured.SPANS.clear()
    yield captured.SPANS
    captured.SPANS.clear()


@pytest.fixture
def metric_points() -> MetricPoints:
    """Metric values recorded during the test: `.total(name, **attributes)`, `.points(...)`."""
    return MetricPoints(captured.METRICS)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The shared redis-server (marks the test `redis`)."""
    return server_url(REDIS.variable)


@pytest.fixture(scope="session")
def redis_cluster_url() -> str:
    """A node of the shared Redis Cluster (marks the test `redis`)."""
    return server_url(REDIS_CLUSTER.variable)


@pytest.fixture(scope="session")
def mysql_url() -> str:
    """The shared MariaDB (marks the test `mysql`)."""
    return server_url(MYSQL.variable)


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    """A redis-server of this test alone, which it may stop, pause and restart."""
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_cluster(tmp_path) -> Iterator[PrivateCluster]:
    """A Redis Cluster (3 masters + 3 replicas) of this test alone: it may pause, kill and
    fail over nodes (see `PrivateCluster`). Starting it takes about two seconds."""
    cluster = PrivateCluster(tmp_path)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
