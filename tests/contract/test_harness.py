"""The suite's own machinery: skipping or failing on missing servers, unique names, cleanup."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest

from .backends import BACKENDS, BackendSpec, Harness, UniqueNames, build_settings, require_servers

NEEDS_REDIS = BackendSpec(settings=lambda: {}, needs=("IFRIEND_TEST_REDIS_URL",))


def test_a_backend_without_its_server_is_skipped_locally():
    with pytest.raises(pytest.skip.Exception, match="IFRIEND_TEST_REDIS_URL"):
        require_servers("redis", NEEDS_REDIS, env={})
    with pytest.raises(pytest.skip.Exception):
        require_servers("redis", NEEDS_REDIS, env={"CI": "false", "IFRIEND_TEST_REDIS_URL": ""})


@pytest.mark.parametrize("ci", ["true", "1", "yes", "TRUE"])
def test_a_backend_without_its_server_fails_in_ci(ci):
    with pytest.raises(pytest.fail.Exception, match="IFRIEND_TEST_REDIS_URL.*CI is set"):
        require_servers("redis", NEEDS_REDIS, env={"CI": ci})


def test_a_backend_with_its_server_runs():
    require_servers("redis", NEEDS_REDIS, env={"CI": "true", "IFRIEND_TEST_REDIS_URL": "redis://x"})
    require_servers("memory", BACKENDS["memory"], env={"CI": "true"})


def test_overrides_merge_into_the_backend_settings():
    settings = build_settings(BACKENDS["memory"], session={"max_event_bytes": 2048})

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


@pytest.mark.parametrize("name", list(BACKENDS))
async def test_cleanup_deletes_every_session_of_the_tracked_apps(name):
    require_servers(name, BACKENDS[name])
    async with AsyncExitStack() as stack:
        harness = Harness(name, BACKENDS[name], stack)
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
