"""Hostile and broken requests to the Slack channel, and Slack's Web API away (issue 12):
401 before a body is parsed, 400 for signed garbage, never a 5xx or a traceback, a few log
lines however many requests; an event acked and reported once when Slack cannot be reached."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import time
from typing import Any

import pytest
from aiohttp import ClientSession
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ifriend_slack.server import REQUESTS_REFUSED
from ifriend_slack.testing import FakeSlack, mention
from ifriend_slack.webapi import WEB_API_UNAVAILABLE

from ..servers import free_port
from .bots import SECRET, Bot, MakeBot

GARBAGE = [
    pytest.param(b"{not json", "application/json", id="bad-json"),
    pytest.param(b"[1, 2, 3]", "application/json", id="json-array"),
    pytest.param(b'"just a string"', "application/json", id="json-string"),
    pytest.param(b"\xff\xfe{\x80}", "application/json", id="invalid-utf8"),
    pytest.param(b"payload=%7Bnot-json", "application/x-www-form-urlencoded", id="broken-form"),
    pytest.param(b"payload=%5B1%5D", "application/x-www-form-urlencoded", id="form-payload-array"),
    pytest.param(b'{"team": 5, "event": "x"}', "application/json", id="wrong-shapes"),
    pytest.param(b'{"type": "event_callback", "event_id": "Ev1", "event": null}', "application/json", id="null-event"),
]


def sign(body: bytes, timestamp: str, secret: str = SECRET) -> str:
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    return "v0=" + digest.hexdigest()


async def post(bot: Bot, body: bytes, headers: dict[str, str]) -> int:
    data = io.BytesIO(body) if len(body) > 64 * 1024 else body  # aiohttp warns of big raw bytes
    async with ClientSession() as session, session.post(bot.channel.url, data=data, headers=headers) as resp:
        return resp.status


def noisy(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    """Records an operator would see: warnings and above, or any with a traceback."""
    return [r for r in records if r.levelno >= logging.WARNING or r.exc_info or "Traceback" in r.getMessage()]


@pytest.mark.parametrize(("body", "content_type"), GARBAGE)
async def test_unsigned_garbage_gets_401_before_its_body_is_parsed(
    bot: Bot, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture, metric_points, body: bytes, content_type: str
) -> None:
    caplog.set_level(logging.DEBUG)
    timestamp = str(int(time.time()))
    for _ in range(200):
        headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": timestamp}
        assert await post(bot, body, headers) == 401
    bad_signature = {"Content-Type": content_type, "X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": "v0=00"}
    assert await post(bot, body, bad_signature) == 401

    lines = noisy(caplog.records)
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert "401" in lines[0].getMessage() and not lines[0].exc_info
    assert not any("JSONDecodeError" in r.getMessage() or "payload" in r.getMessage() for r in caplog.records)
    assert metric_points.total(REQUESTS_REFUSED, reason="signature") == 201
    assert fake_slack.calls == []


@pytest.mark.parametrize(("body", "content_type"), GARBAGE)
async def test_signed_garbage_gets_400_and_one_log_line(
    bot: Bot, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture, body: bytes, content_type: str
) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(200):
        timestamp = str(int(time.time()))
        headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": sign(body, timestamp)}
        assert await post(bot, body, headers) == 400

    lines = noisy(caplog.records)
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert "400" in lines[0].getMessage() and not lines[0].exc_info
    await bot.settle()
    assert fake_slack.calls == []


async def test_a_body_over_a_mebibyte_gets_413(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = b'{"type": "event_callback", "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": sign(body, timestamp)}
    assert await post(bot, body, headers) == 413
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]


# --- fuzz ---------------------------------------------------------------------------------------

header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
slack_like = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["event_callback", "url_verification", "block_actions", "ssl_check"]) | json_values,
        "team_id": st.just("T0001") | json_values,
        "team": json_values,
        "token": json_values,
        "challenge": json_values,
        "enterprise": json_values,
        "authorizations": json_values,
        "user": json_values,
        "channel": json_values,
        "event": st.fixed_dictionaries(
            {},
            optional={
                "type": st.sampled_from(["app_mention", "message", "app_home_opened"]) | json_values,
                "user": st.just("U0001") | json_values,
                "channel": st.just("C0001") | json_values,
                "ts": st.just("1.000001") | json_values,
                "thread_ts": json_values,
                "text": json_values,
                "files": json_values,
                "subtype": json_values,
                "bot_id": json_values,
            },
        )
        | json_values,
        "actions": json_values,
    },
)
bodies = (
    st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | slack_like.map(lambda v: json.dumps(v).encode())
    | slack_like.map(lambda v: b"payload=" + json.dumps(v).encode())
    | st.text(max_size=60).map(lambda t: t.encode("utf-8", "surrogatepass"))
)
content_types = st.sampled_from(
    ["application/json", "application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x", ""]
) | header_text
timestamps = st.sampled_from(["now", "stale", "future"]) | header_text
signatures = st.sampled_from(["valid", "other-secret", None]) | header_text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=bodies, content_type=content_types, timestamp=timestamps, signature=signatures, retry=st.none() | header_text)
async def test_fuzz_no_request_gets_a_5xx_or_a_traceback_or_reaches_the_agent_unsigned(
    fuzzed_bot: tuple[Bot, list[Any], list[logging.LogRecord]],
    body: bytes,
    content_type: str,
    timestamp: str,
    signature: str | None,
    retry: str | None,
) -> None:
    bot, reached, records = fuzzed_bot  # reached: requests bolt saw, the only way to the agent
    now = int(time.time())
    stamp = {"now": str(now), "stale": str(now - 3600), "future": str(now + 3600)}.get(timestamp, timestamp)
    headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp}
    if signature == "valid":
        headers["X-Slack-Signature"] = sign(body, stamp)
    elif signature == "other-secret":
        headers["X-Slack-Signature"] = sign(body, stamp, "another-secret")
    elif signature is not None:
        headers["X-Slack-Signature"] = signature
    if retry is not None:
        headers["X-Slack-Retry-Num"] = retry
    before = len(reached)

    status = await post(bot, body, headers)

    assert status < 500
    authentic = signature == "valid" and timestamp == "now"
    if not authentic:
        assert status == 401
        assert len(reached) == before
    tracebacks = [r for r in records if r.exc_info or "Traceback" in r.getMessage()]
    assert not tracebacks, tracebacks[0].getMessage()


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
async def fuzzed_bot(bot: Bot):
    """The bot, the requests that reached bolt, and every log record meanwhile."""
    reached: list[Any] = []
    dispatch = bot.channel.bolt.async_dispatch

    async def counted(request: Any) -> Any:
        reached.append(request)
        return await dispatch(request)

    bot.channel.bolt.async_dispatch = counted
    handler = _Collect()
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        yield bot, reached, handler.records
        await bot.settle()
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    tracebacks = [r for r in handler.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not tracebacks, tracebacks[0].getMessage()


# --- the Web API away ------------------------------------------------------------------------------


async def test_slack_unreachable_at_authorization_acks_and_reports_once(
    make_bot: MakeBot, caplog: pytest.LogCaptureFixture, metric_points
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = await make_bot(slack={"api_url": f"http://127.0.0.1:{free_port()}/api/"})
    for i in range(20):
        assert await bot.events.send(mention(f"hello {i}")) == 200
    await bot.settle()

    lines = noisy(caplog.records)
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert "Slack Web API unreachable during authorize" in lines[0].getMessage()
    assert "trace_id=" in lines[0].getMessage() and not lines[0].exc_info
    assert metric_points.total(WEB_API_UNAVAILABLE, step="authorize") == 20


async def test_slack_unreachable_while_replying_is_reported_once_per_minute_without_an_apology(
    bot: Bot, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture, metric_points
) -> None:
    assert await bot.events.send(mention("first, while Slack answers")) == 200
    await bot.settle()
    answered = len(fake_slack.calls_to("chat.postMessage"))
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    fake_slack.fail("chat.postMessage", status=503, times=100)

    for i in range(3):
        assert await bot.events.send(mention(f"while Slack is down {i}")) == 200
    await bot.settle()

    lines = noisy(caplog.records)
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert "Slack Web API unreachable during reply (SlackApiError)" in lines[0].getMessage()
    assert "trace_id=" in lines[0].getMessage()
    assert metric_points.total(WEB_API_UNAVAILABLE, step="reply") == 3
    assert len(fake_slack.calls_to("chat.postMessage")) == answered  # no apology got through


async def test_slack_gone_while_replying_is_reported_too(
    bot: Bot, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture, metric_points
) -> None:
    assert await bot.events.send(mention("first")) == 200
    await bot.settle()
    caplog.set_level(logging.DEBUG)
    await fake_slack.__aexit__(None, None, None)  # the Web API's server is gone

    assert await bot.events.send(mention("second")) == 200
    await bot.settle()

    assert metric_points.total(WEB_API_UNAVAILABLE, step="reply") == 1
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]


def test_doctor_and_run_fail_when_slack_is_unreachable(tmp_path) -> None:
    from click.testing import CliRunner

    from ifriend.cli import create_cli

    api = f"http://127.0.0.1:{free_port()}/api/"
    config = tmp_path / "ifriend.toml"
    config.write_text(
        f'[channels.slack]\nmode = "http"\nbot_token = "xoxb-doctor-1234567"\nsigning_secret = "{SECRET}"\n'
        f'api_url = "{api}"\nport = 0\nhost = "127.0.0.1"\n'
    )
    for command in ("doctor", "run"):
        result = CliRunner().invoke(create_cli(), [command, "--config", str(config), "--timeout", "5"])
        assert result.exit_code == 1, result.output
        [line] = [line for line in result.output.splitlines() if line.startswith("channel ping")]
        assert line.split()[2:4] == ["slack", "FAIL"] and "ClientConnectorError" in line, line
        assert "all checks passed" not in result.output
        assert "xoxb-doctor-1234567" not in result.output
