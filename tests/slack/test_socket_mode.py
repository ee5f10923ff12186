"""Socket Mode against a local websocket speaking Slack's envelope protocol."""

from __future__ import annotations

from contextlib import AsyncExitStack

from ifriend import App, Settings
from ifriend_slack.testing import FakeSlack, event_body, mention

from .bots import APP_TOKEN, BOT_TOKEN


async def test_a_mention_over_socket_mode_is_acked_and_answered(fake_slack: FakeSlack) -> None:
    settings = Settings.model_validate(
        {
            "channels": {
                "slack": {
                    "mode": "socket",
                    "bot_token": BOT_TOKEN,
                    "app_token": APP_TOKEN,
                    "api_url": fake_slack.api_url,
                }
            }
        }
    )
    async with AsyncExitStack() as stack:
        app = await stack.enter_async_context(App(settings))
        channel = app.build_channel("slack")
        stack.push_async_callback(channel.close)
        await channel.start()
        [opened] = fake_slack.calls_to("apps.connections.open")
        assert opened.token == APP_TOKEN  # the app-level token opens the socket
        await fake_slack.wait_for(lambda: fake_slack.connected)

        post = mention("hello over the socket")
        envelope = await fake_slack.send_envelope(event_body(post))
        ack = await fake_slack.wait_for(lambda: fake_slack.acks.get(envelope))
        assert ack == {"envelope_id": envelope}

        posted = await fake_slack.wait_for(lambda: fake_slack.posts("C0001", post["ts"]))
        await channel.drain(10)
        assert posted[0]["text"].startswith('[ifriend-echo] You said: "hello over the socket"')
        [call] = fake_slack.calls_to("chat.startStream")  # streamed natively by default
        assert call.token == BOT_TOKEN

        # A retry of the same envelope's event is acked and not answered again.
        again = await fake_slack.send_envelope(event_body(post, event_id="EvSAME"), retry_attempt=1)
        await fake_slack.wait_for(lambda: again in fake_slack.acks)
        await channel.drain(10)
        assert len(fake_slack.posts("C0001", post["ts"])) == 1

        # An event no listener handles is acked too (an unacked envelope is redelivered).
        other = await fake_slack.send_envelope(event_body({"type": "team_join", "user": {"id": "U9"}}))
        await fake_slack.wait_for(lambda: other in fake_slack.acks)
