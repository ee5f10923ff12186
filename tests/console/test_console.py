"""The console channel: `ifriend chat` and `ifriend run` driven with input lines."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ifriend import App, Settings
from ifriend_bench.cleanup import drop_tables
from ifriend.cli import load_cli
from ifriend.config import ENV_OVERRIDES, GENERIC_PREFIX
from ifriend.errors import ConfigError
from ifriend_console.lines import PromptLines


LABEL = "[ifriend-echo] "


@pytest.fixture(autouse=True)
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A private home and working directory; no settings from the caller's environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in [*ENV_OVERRIDES, "IFRIEND_CONFIG"]:
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith(GENERIC_PREFIX):
            monkeypatch.delenv(name)
    return tmp_path


def chat(*lines: str, args: tuple[str, ...] = ()) -> Result:
    text = "".join(f"{line}\n" for line in lines)
    return CliRunner().invoke(load_cli(), [*args, "chat"], input=text)


def session_in_banner(output: str) -> str:
    return re.search(r"session (\w[\w-]*)\.", output.splitlines()[0]).group(1)


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_chat_answers_and_remembers_the_conversation() -> None:
    result = chat("hello, my name is Bob", "what is my name?", "/quit", "never read")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ifriend chat with ifriend_assistant (model ifriend-echo)")
    assert lines[1] == f'{LABEL}You said: "hello, my name is Bob". This is the start of our conversation.'
    assert lines[2] == (
        f'{LABEL}You said: "what is my name?". Earlier you said: "hello, my name is Bob".'
    )
    assert "never read" not in result.stdout


def test_chat_calls_the_tool() -> None:
    result = chat("what time is it?")
    assert re.search(
        r"\[ifriend-echo\] The tool get_current_time returned: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC",
        result.stdout,
    ), result.stdout


def test_new_and_sessions(home: Path) -> None:
    result = chat("first session", "/sessions", "/new", "second session", "/sessions", "/quit")
    assert result.exit_code == 0, result.output
    first = session_in_banner(result.stdout)
    second = re.search(r"New session (\w+)\.", result.stdout).group(1)
    assert first != second
    listings = result.stdout.split("Your sessions, least recently used first:\n")[1:]
    assert listings[0].splitlines()[0] == f"* {first}"
    assert listings[1].splitlines()[:2] == [f"  {first}", f"* {second}"]
    assert 'You said: "second session". This is the start of our conversation.' in result.stdout
    state = json.loads((home / ".ifriend" / "console_history.state.json").read_text())
    assert list(state["sessions"].values()) == [second]


def test_switch_returns_to_a_session() -> None:
    result = chat("in the first", "/new", "/switch nowhere-yet", "hello", "/quit")
    assert "Session nowhere-yet." in result.stdout
    assert 'You said: "hello". This is the start' in result.stdout


def test_end_of_input_ends_the_chat() -> None:
    result = chat("only line")
    assert result.exit_code == 0 and LABEL in result.stdout


def test_unknown_commands_and_help() -> None:
    result = chat("/frobnicate", "/help")
    assert "Unknown command '/frobnicate'." in result.stdout
    assert result.stdout.count("/sessions       list your sessions") == 2


def test_the_session_is_remembered_across_restarts() -> None:
    first = session_in_banner(chat("hello").stdout)
    assert session_in_banner(chat("again").stdout) == first


def test_user_id_and_history_file_come_from_the_settings(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        f"""
        [channels.console]
        user_id = "ada"
        history_file = "{tmp_path / "elsewhere" / "hist"}"
        """,
    )
    result = chat("hi", args=("--config", str(config)))
    assert "user ada, session" in result.stdout
    state = json.loads((tmp_path / "elsewhere" / "hist.state.json").read_text())
    assert list(state["sessions"]) == ["ifriend/ada"]


def test_an_agent_failure_is_an_apology_and_the_chat_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = f"failing_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            from google.adk.agents.base_agent import BaseAgent

            class Failing(BaseAgent):
                async def _run_async_impl(self, ctx):
                    raise ValueError("model exploded")
                    yield

            agent = Failing(name="failing")
            """
        ),
        encoding="utf-8",
    )
    config = write_config(tmp_path, f'[app]\nagent = "{name}:agent"\n')
    result = chat("one", "two", args=("--config", str(config)))
    assert result.exit_code == 0, result.output
    assert result.stdout.count("Sorry, something went wrong (ValueError); the details are logged.") == 2
    assert "the console turn failed" in caplog.text
    assert "ValueError: model exploded" in caplog.text  # the traceback is logged


def test_a_durable_backend_keeps_the_conversation_across_restarts(tmp_path: Path, mysql_url: str) -> None:
    url = mysql_url
    prefix = f"ifc_{uuid.uuid4().hex[:8]}_"
    config = write_config(
        tmp_path,
        f"""
        [session]
        backend = "mysql"
        [backends.mysql]
        url = "{url}"
        table_prefix = "{prefix}"
        """,
    )
    try:
        first = chat("my favourite colour is green", args=("--config", str(config)))
        assert first.exit_code == 0, first.output
        second = chat("which colour?", args=("--config", str(config)))
        assert session_in_banner(second.stdout) == session_in_banner(first.stdout)
        assert 'Earlier you said: "my favourite colour is green"' in second.stdout
    finally:
        import asyncio

        asyncio.run(drop_tables(url, prefix))


# --- the channel in the App ---------------------------------------------------------------------


def test_the_console_channel_is_enabled_by_its_table() -> None:
    assert App(Settings.model_validate({"channels": {"console": {}}})).enabled_channels() == ["console"]
    off = Settings.model_validate({"channels": {"console": {"enabled": False}}})
    assert App(off).enabled_channels() == []


def test_enabled_must_be_a_boolean() -> None:
    app = App(Settings.model_validate({"channels": {"console": {"enabled": "no"}}}))
    with pytest.raises(ConfigError, match="channels.console.enabled"):
        app.enabled_channels()


def test_an_unknown_console_option_names_the_key() -> None:
    app = App(Settings.model_validate({"channels": {"console": {"colour": "red", "enabled": True}}}))
    with pytest.raises(ConfigError) as info:
        app.build_channel("console")
    assert "channels.console.colour" in str(info.value) and "user_id" in str(info.value)


# --- ifriend run ----------------------------------------------------------------------------------


def test_run_chats_until_the_input_ends(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[channels.console]\n")
    result = CliRunner().invoke(load_cli(), ["--config", str(config), "run"], input="hello\n")
    assert result.exit_code == 0, result.output
    assert "channels enabled: console" in result.stdout
    assert "all checks passed" in result.stdout
    assert f'{LABEL}You said: "hello".' in result.stdout


def _script() -> list[str]:
    script = Path(sys.executable).with_name("ifriend")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ifriend.cli"]


def _environment(home: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(GENERIC_PREFIX)}
    for name in [*ENV_OVERRIDES, "IFRIEND_CONFIG"]:
        keep.pop(name, None)
    return {**keep, "HOME": str(home)}


def test_chat_as_a_process_with_piped_input(home: Path) -> None:
    done = subprocess.run(
        [*_script(), "chat"],
        input="hello from a pipe\nwhat did I say?\n/quit\n",
        cwd=home, env=_environment(home), capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f'{LABEL}You said: "hello from a pipe".' in done.stdout
    assert 'Earlier you said: "hello from a pipe"' in done.stdout


def test_run_with_the_shipped_config_and_stdin_closed_exits_cleanly(home: Path) -> None:
    shipped = Path(__file__).resolve().parents[2] / "ifriend.toml"
    done = subprocess.run(
        [*_script(), "--config", str(shipped), "run"],
        stdin=subprocess.DEVNULL,
        cwd=home, env=_environment(home), capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "channels enabled: console" in done.stdout
    assert "all checks passed" in done.stdout
    assert "ifriend chat with ifriend_assistant" in done.stdout
    assert "Traceback" not in done.stderr


# --- the terminal prompt --------------------------------------------------------------------------


async def test_the_prompt_edits_lines_and_keeps_a_history(tmp_path: Path) -> None:
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    history = tmp_path / "sub" / "history"
    with create_pipe_input() as keys:
        lines = PromptLines(history, input=keys, output=DummyOutput())
        keys.send_text("helo\x1b[D\x1b[Dl\r")  # type, move left twice, insert: "hello"
        assert await lines.read() == "hello"
        keys.send_text("\x04")  # Ctrl-D on an empty line
        assert await lines.read() is None
    assert "+hello" in history.read_text()
    with create_pipe_input() as keys:
        again = PromptLines(history, input=keys, output=DummyOutput())
        keys.send_text("\x1b[A\r")  # the up arrow recalls the last line from the file
        assert await again.read() == "hello"


def test_sigterm_stops_run_while_the_console_waits_for_input(home: Path) -> None:
    shipped = Path(__file__).resolve().parents[2] / "ifriend.toml"
    process = subprocess.Popen(
        [*_script(), "--config", str(shipped), "run"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=home, env=_environment(home), text=True,
    )
    try:
        process.stdin.write("hello\n")
        process.stdin.flush()
        while (line := process.stdout.readline()) and not line.startswith("[ifriend-echo]"):
            pass
        assert line.startswith('[ifriend-echo] You said: "hello".')
        process.send_signal(signal.SIGTERM)  # stdin stays open: the console is still reading
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "Stopping." in out
    assert "Traceback" not in err
