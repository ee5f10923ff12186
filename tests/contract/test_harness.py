"""The suite's own machinery: skipping or failing on missing servers, markers, unique names,
cleanup."""

from __future__ import annotations

from contextlib import AsyncExitStack
from types import SimpleNamespace

import pytest

from ..backends import mark_server_tests, marks_of, require_servers
from .backends import BACKENDS, SUITE, Harness, UniqueNames


def test_a_backend_without_its_server_is_skipped_locally():
    with pytest.raises(pytest.skip.Exception, match="IFRIEND_TEST_REDIS_URL"):
        SUITE.require("redis", env={})
    with pytest.raises(pytest.skip.Exception):
        SUITE.require("redis", env={"CI": "false", "IFRIEND_TEST_REDIS_URL": ""})


@pytest.mark.parametrize("ci", ["true", "1", "yes", "TRUE"])
def test_a_backend_without_its_server_fails_in_ci(ci):
    with pytest.raises(pytest.fail.Exception, match="IFRIEND_TEST_REDIS_URL.*CI is set"):
        SUITE.require("redis", env={"CI": ci})


def test_a_backend_with_its_server_runs():
    assert SUITE.require("redis", env={"CI": "true", "IFRIEND_TEST_REDIS_URL": "redis://x"})
    assert SUITE.require("memory", env={"CI": "true"}) is BACKENDS["memory"]
    require_servers("this test", (), env={"CI": "true"})


def test_each_backend_is_marked_by_the_servers_it_needs():
    marks = {p.values[0]: sorted(m.name for m in p.marks) for p in SUITE.params()}

    assert marks == {
        "memory": [],
        "redis": ["redis"],
        "mysql": ["mysql"],
        "tiered": ["mysql", "redis"],
        "redis-cluster": ["redis"],
        "tiered-cluster": ["mysql", "redis"],
    }
    assert marks_of(()) == []


class _Item:
    def __init__(self, *fixtures: str) -> None:
        self.fixturenames = list(fixtures)
        self.marks: list[str] = []

    def iter_markers(self):
        return (SimpleNamespace(name=name) for name in self.marks)

    def add_marker(self, name: str) -> None:
        self.marks.append(name)


def test_a_test_is_marked_by_the_server_fixtures_it_uses():
    items = [_Item("tmp_path"), _Item("make_store", "redis_url"), _Item("mysql_url", "redis_cluster_url"),
             _Item("private_mariadb", "private_redis"), _Item("private_cluster")]
    items[4].marks.append("redis")  # marked by hand already: not twice

    mark_server_tests(items)  # type: ignore[arg-type]

    assert [item.marks for item in items] == [[], ["redis"], ["mysql", "redis"], ["mysql", "redis"], ["redis"]]


def test_overrides_merge_into_the_backend_settings():
    settings = BACKENDS["memory"].build(session={"max_event_bytes": 2048})

    assert settings.session.backend == "memory"
    assert settings.session.max_event_bytes == 2048


def test_unique_names_differ_and_are_remembered():
    names = UniqueNames("test_something[memory]")
    a, b = names(), names("-x")
    names.track("by-hand")
    names.track(a)

    assert a != b and b.endswith("-x")
    assert a.startswith("ct-test-something-memory-")
    assert names.apps == [a, b, "by-hand"]


@pytest.mark.parametrize("name", SUITE.params())
async def test_cleanup_deletes_every_session_of_the_tracked_apps(name):
    spec = SUITE.require(name)
    async with AsyncExitStack() as stack:
        harness = Harness(name, spec, stack)
        service = await harness.open()
        tracked, untracked = harness.names(), "ct-untracked-" + harness.names.label
        for app in (tracked, untracked):
            for user in ("u1", "u2"):
                await service.create_session(app_name=app, user_id=user)

        await harness.cleanup()

        assert (await service.list_sessions(app_name=tracked)).sessions == []
        assert len((await service.list_sessions(app_name=untracked)).sessions) == 2
        for s in (await service.list_sessions(app_name=untracked)).sessions:
            await service.delete_session(app_name=untracked, user_id=s.user_id, session_id=s.id)
