"""The Redis dedupe under a burst (small pool, every post delivered three times at once), on a
single Redis and on a cluster, and with Redis really unreachable."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest

from ifriend_bench.cleanup import delete_redis_keys
from ifriend_slack.dedupe import SLACK_DEDUPE_UNAVAILABLE, SLACK_DEDUPLICATED
from ifriend_slack.testing import FakeSlack, as_message, event_body, mention

from .bots import MakeBot

POSTS = 120


@pytest.mark.parametrize("server", ["redis", "redis-cluster"])
async def test_a_burst_of_posts_delivered_three_times_each_is_answered_once(
    server: str, make_bot: MakeBot, fake_slack: FakeSlack, metric_points: Any, redis_url: str, redis_cluster_url: str
) -> None:
    url = redis_url if server == "redis" else redis_cluster_url
    prefix = f"ifriend-test-{uuid.uuid4().hex[:10]}"
    # one pool of 4 connections (per node) for the sessions and the dedupe of this process;
    # 360 deliveries queue for them, so the deadline is generous (a busy CI host)
    redis = {"url": url, "key_prefix": prefix, "max_connections": 4, "cluster": server != "redis",
             "timeout_seconds": 15}
    try:
        bot = await make_bot(settings={"session": {"backend": "redis"}, "backends": {"redis": redis}})
        assert bot.channel.state.kind == "redis"
        posts = [mention(f"post {i}", user=f"U{i % 7:04d}") for i in range(POSTS)]
        deliveries = []
        for post in posts:
            body = event_body(post)
            deliveries += [
                bot.events.send(body),  # app_mention
                bot.events.send(as_message(post)),  # the message event of the same post
                bot.events.send(body, retry_num=1),  # Slack's retry of the app_mention
            ]
        statuses = await asyncio.gather(*deliveries)
        assert statuses == [200] * len(deliveries)
        await bot.channel.drain(120)
        for i, post in enumerate(posts):
            answers = fake_slack.posts("C0001", post["ts"])
            assert len(answers) == 1, (i, answers)
            assert f'You said: "post {i}"' in answers[0]["text"]
            history = await bot.history(post["user"], f"slack:T0001:C0001:{post['ts']}")
            assert [author for author, _ in history].count("user") == 1
            assert history[0] == ("user", f"post {i}")
        assert metric_points.total(SLACK_DEDUPLICATED) == 2 * POSTS
        assert metric_points.total(SLACK_DEDUPE_UNAVAILABLE) == 0
    finally:
        await delete_redis_keys(url, prefix, cluster=server != "redis")


async def test_an_unreachable_redis_lets_posts_through_counted_and_logged_once(
    make_bot: MakeBot, fake_slack: FakeSlack, private_redis: Any, metric_points: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    private_redis.stop()  # connections are refused
    redis = {"url": private_redis.url, "timeout_seconds": 0.5}
    bot = await make_bot(settings={"backends": {"redis": redis}})
    assert bot.channel.state.kind == "redis"
    caplog.set_level(logging.WARNING, logger="ifriend_slack")
    posts = [mention(f"post {i}") for i in range(5)]
    for post in posts:
        assert await bot.events.send(post) == 200
    await bot.channel.drain(30)
    assert all(len(fake_slack.posts("C0001", p["ts"])) == 1 for p in posts)
    assert metric_points.total(SLACK_DEDUPE_UNAVAILABLE) == len(posts)
    warnings = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "dedupe store unreachable (BackendUnavailableError); handling events anyway" in warnings[0]


@pytest.mark.parametrize("cluster", [True, False])
async def test_a_wrong_cluster_setting_of_the_dedupe_fails_the_start(
    cluster: bool, make_bot: MakeBot, redis_url: str, redis_cluster_url: str
) -> None:
    from ifriend.errors import TopologyError

    url = redis_url if cluster else redis_cluster_url
    # sessions in memory: only the Slack dedupe talks to Redis
    with pytest.raises(TopologyError, match="backends.redis.cluster"):
        await make_bot(settings={"backends": {"redis": {"url": url, "cluster": cluster}}})
