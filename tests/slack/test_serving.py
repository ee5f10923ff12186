"""The slack channel served the way `ifriend run` serves channels, and its shutdown."""

from __future__ import annotations

import asyncio

from ifriend import App, Settings
from ifriend.serving import build_channels, serve_channels
from ifriend_slack.testing import EventPoster, FakeSlack, mention

from .bots import SECRET, slack_options


async def test_serve_channels_runs_the_slack_channel_until_stopped(fake_slack: FakeSlack) -> None:
    settings = Settings.model_validate({"channels": {"slack": slack_options(fake_slack)}})
    async with App(settings) as app:
        channels = build_channels(app)
        slack = channels["slack"]
        serving = asyncio.create_task(serve_channels(channels, echo=lambda _: None))
        await asyncio.wait_for(slack.ready.wait(), 10)
        async with EventPoster(slack.url, SECRET) as events:
            post = mention("served by ifriend run")
            assert await events.send(post) == 200
            await fake_slack.wait_for(lambda: fake_slack.posts("C0001", post["ts"]))
            # A slow answer in flight when the bot stops is still delivered (graceful shutdown).
            fake_slack.slow("chat.postMessage", 0.5)
            late = mention("answer me before you go")
            assert await events.send(late) == 200
            await asyncio.sleep(0.1)
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
        assert fake_slack.posts("C0001", late["ts"])
        assert slack.transport is None  # closed
