"""Telemetry tests reuse the Slack tests' fake Slack Web API and signed-request bots."""

from __future__ import annotations

from ..slack.bots import fake_slack, make_bot  # noqa: F401 - fixtures
