"""`ifriend run` serving channels: together, until all return, a signal, or a crash."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

from ifriend import App, ChannelContext, Settings, hookimpl
from ifriend.cli import create_cli
from ifriend.errors import ChannelCrashedError, PluginError
from ifriend.serving import build_channels, serve_channels


class FakeChannel:
    def __init__(self, name: str, log: list[str], *, lasts: float | None = None, fails: bool = False):
        self.name, self.log, self.lasts, self.fails = name, log, lasts, fails

    async def serve(self) -> None:
        self.log.append(f"serve {self.name}")
        try:
            if self.lasts is None:
                await asyncio.Event().wait()
            await asyncio.sleep(self.lasts)
            if self.fails:
                raise ValueError(f"{self.name} fell over")
        except asyncio.CancelledError:
            self.log.append(f"cancelled {self.name}")
            raise
        self.log.append(f"returned {self.name}")

    async def close(self) -> None:
        self.log.append(f"close {self.name}")


async def test_serving_ends_when_every_channel_has_returned() -> None:
    log: list[str] = []
    said: list[str] = []
    channels = {"a": FakeChannel("a", log, lasts=0), "b": FakeChannel("b", log, lasts=0.05)}
    await serve_channels(channels, echo=said.append)
    assert log[:2] == ["serve a", "serve b"]
    assert log[2:] == ["returned a", "returned b", "close a", "close b"]
    assert said == ["Channel a finished; still serving: b."]


async def test_a_crash_stops_the_others_and_is_reported() -> None:
    log: list[str] = []
    channels = {"bad": FakeChannel("bad", log, lasts=0.01, fails=True), "good": FakeChannel("good", log)}
    with pytest.raises(ChannelCrashedError, match="channel 'bad' crashed: ValueError: bad fell over"):
        await serve_channels(channels, echo=lambda _: None)
    assert log[-3:] == ["cancelled good", "close bad", "close good"]


async def test_sigterm_stops_serving_and_closes_the_channels() -> None:
    log: list[str] = []
    said: list[str] = []
    asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGTERM)
    await serve_channels({"a": FakeChannel("a", log)}, echo=said.append)
    assert log == ["serve a", "cancelled a", "close a"]
    assert said == ["Stopping."]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handler is removed


async def test_a_close_failure_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    class BadClose(FakeChannel):
        async def close(self) -> None:
            raise RuntimeError("cannot close")

    await serve_channels({"a": BadClose("a", [], lasts=0)}, echo=lambda _: None)
    assert "channel a failed to close" in caplog.text


def channel_plugin(**channels):
    class Plugin:
        @hookimpl
        def register_channels(self, register):
            for name, factory in channels.items():
                register(name, factory)

    return Plugin()


def test_channels_get_their_context_without_the_enabled_key() -> None:
    seen: list[ChannelContext] = []

    def factory(context: ChannelContext) -> FakeChannel:
        seen.append(context)
        return FakeChannel(context.name, [])

    settings = Settings.model_validate(
        {"channels": {"fake": {"enabled": True, "colour": "red"}, "off": {"enabled": False}}}
    )
    app = App(settings, plugins=[channel_plugin(fake=factory, off=factory)])
    assert list(build_channels(app)) == ["fake"]
    [context] = seen
    assert context.app is app and context.options == {"colour": "red"}


def test_a_factory_must_build_something_that_serves() -> None:
    app = App(
        Settings.model_validate({"channels": {"odd": {}}}),
        plugins=[channel_plugin(odd=lambda context: object())],
    )
    with pytest.raises(PluginError, match="no serve"):
        build_channels(app)


def test_run_exits_1_when_a_channel_crashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    log: list[str] = []
    plugin = channel_plugin(crashy=lambda context: FakeChannel("crashy", log, lasts=0, fails=True))
    (tmp_path / "ifriend.toml").write_text("[channels.crashy]\n")
    result = CliRunner().invoke(create_cli(), ["run"], obj={"plugins": [plugin]})
    assert result.exit_code == 1
    assert "channel 'crashy' crashed: ValueError: crashy fell over" in result.stderr
    assert "close crashy" in log
    assert "all checks passed" in result.stdout


def test_run_serves_a_channel_that_uses_the_conversations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    answers: list[str] = []

    class OneTurn:
        def __init__(self, context: ChannelContext) -> None:
            self.context = context

        async def serve(self) -> None:
            turn = self.context.app.conversations.turn(user_id="u", session_id="s", text="ping")
            answers.extend([r.text async for r in turn if r.final])

    (tmp_path / "ifriend.toml").write_text("[channels.one]\n")
    result = CliRunner().invoke(create_cli(), ["run"], obj={"plugins": [channel_plugin(one=OneTurn)]})
    assert result.exit_code == 0, result.output
    assert answers == ['[ifriend-echo] You said: "ping". This is the start of our conversation.']


@pytest.mark.parametrize("tune", [True, False])
def test_run_tunes_the_garbage_collector_before_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tune: bool
) -> None:
    import gc

    from ifriend.gc_tuning import THRESHOLDS

    monkeypatch.chdir(tmp_path)
    gc.unfreeze()
    seen: list[tuple[tuple[int, int, int], int]] = []

    class Observer:
        def __init__(self, context: ChannelContext) -> None:
            pass

        async def serve(self) -> None:
            seen.append((gc.get_threshold(), gc.get_freeze_count()))

    (tmp_path / "ifriend.toml").write_text(f"[app]\ntune_gc = {str(tune).lower()}\n[channels.watch]\n")
    result = CliRunner().invoke(create_cli(), ["run"], obj={"plugins": [channel_plugin(watch=Observer)]})
    assert result.exit_code == 0, result.output
    [(thresholds, frozen)] = seen
    assert (thresholds == THRESHOLDS) is tune and (frozen > 0) is tune
