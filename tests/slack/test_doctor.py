"""`ifriend doctor` checks Slack's `auth.test` when the Slack channel is enabled."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner

from ifriend import App, Settings
from ifriend.cli import load_cli
from ifriend.doctor import doctor
from ifriend_slack.testing import FakeSlack

from .bots import BOT_TOKEN, slack_options


async def test_doctor_calls_auth_test_with_the_bot_token(fake_slack: FakeSlack) -> None:
    app = App(Settings.model_validate({"channels": {"slack": slack_options(fake_slack)}}))
    checks = await doctor(app, timeout=5)
    [slack] = [c for c in checks if c.name == "channel ping"]
    assert (slack.backend, slack.status) == ("slack", "OK")
    assert slack.detail == "auth.test: bot UBOT in team T0001"
    [call] = fake_slack.calls_to("auth.test")
    assert call.token == BOT_TOKEN


async def test_doctor_fails_when_slack_refuses(fake_slack: FakeSlack) -> None:
    fake_slack.fail("auth.test", status=400, retry_after=None)
    app = App(Settings.model_validate({"channels": {"slack": slack_options(fake_slack)}}))
    [slack] = [c for c in await doctor(app, timeout=5) if c.name == "channel ping"]
    assert slack.status == "FAIL"
    assert "SlackApiError" in slack.detail
    assert BOT_TOKEN not in slack.detail


async def test_doctor_command_reports_slack(fake_slack: FakeSlack, tmp_path: Path) -> None:
    config = tmp_path / "ifriend.toml"
    config.write_text(
        f'[channels.slack]\nmode = "http"\nbot_token = "{BOT_TOKEN}"\n'
        f'signing_secret = "s3cret-s3cret"\napi_url = "{fake_slack.api_url}"\n'
    )

    def doctor_command() -> tuple[int, list[str]]:  # in a thread: the fake serves meanwhile
        result = CliRunner().invoke(load_cli(), ["--config", str(config), "doctor"])
        assert BOT_TOKEN not in result.output
        return result.exit_code, [line for line in result.output.splitlines() if line.startswith("channel ping")]

    code, [line] = await asyncio.to_thread(doctor_command)
    assert code == 0 and line.split()[2:4] == ["slack", "OK"], line
    fake_slack.fail("auth.test", status=400, retry_after=None)
    code, [line] = await asyncio.to_thread(doctor_command)
    assert code == 1 and line.split()[2:4] == ["slack", "FAIL"], line
    assert "SlackApiError" in line


def test_doctor_without_channels_checks_none(tmp_path: Path) -> None:
    config = tmp_path / "ifriend.toml"
    config.write_text("")
    result = CliRunner().invoke(load_cli(), ["--config", str(config), "doctor"])
    assert result.exit_code == 0, result.output
    assert "channel ping" not in result.output
