"""`ifriend ...` through click's CliRunner (and one real subprocess)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from ifriend_inprocess import InProcessSessionStore

import ifriend.cli
from ifriend import hookimpl
from ifriend.cli import create_cli, load_cli
from ifriend.config import ENV_OVERRIDES, GENERIC_PREFIX
from ifriend.errors import BackendUnavailableError
from ifriend.plugins import build_plugin_manager

SECRET_PASSWORD = "pw-Zq8sTuv"
SECRET_URL_PASSWORD = "Hx7-url-secret"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No settings leak in from the repository's ifriend.toml or the caller's environment."""
    monkeypatch.chdir(tmp_path)
    for name in [*ENV_OVERRIDES, "IFRIEND_CONFIG"]:
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith(GENERIC_PREFIX):
            monkeypatch.delenv(name)


def make_plugin(name: str, **hooks: Callable[..., Any]) -> ModuleType:
    """A plugin object as a module named `name` with `hooks` as its hook implementations."""
    plugin = ModuleType(name)
    for hook_name, function in hooks.items():
        setattr(plugin, hook_name, hookimpl(function))
    return plugin


def invoke(args: list[str], *, plugins: Sequence[object] = ()) -> Result:
    return CliRunner().invoke(create_cli(), args, obj={"plugins": list(plugins)})


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


class FailingStore(InProcessSessionStore):
    """The memory store, except that `method` raises `error` (or never answers)."""

    def __init__(self, method: str, error: BaseException | None) -> None:
        super().__init__()
        self.name = "failing"
        self._method, self._error = method, error

    async def _fail(self) -> None:
        if self._error is None:
            await asyncio.sleep(3600)
        raise self._error

    async def connect(self) -> None:
        if self._method == "connect":
            await self._fail()

    async def ping(self) -> None:
        if self._method == "ping":
            await self._fail()


def failing_backend_plugin(method: str, error: BaseException | None) -> ModuleType:
    def register_session_backends(register: Callable[..., None]) -> None:
        register("failing", lambda context: FailingStore(method, error))

    return make_plugin("failing_backend", register_session_backends=register_session_backends)


# --- plugins ---------------------------------------------------------------------------------


def test_plugins_lists_the_builtin_memory_backends() -> None:
    result = invoke(["plugins"])
    assert result.exit_code == 0, result.output
    assert "memory  (built-in, from ifriend==" in result.output
    assert "hooks: register_memory_backends, register_session_backends" in result.output
    assert "session backends: memory" in result.output
    assert "memory backends: memory" in result.output


def test_plugins_json_parses() -> None:
    result = invoke(["plugins", "--json"])
    assert result.exit_code == 0, result.output
    plugins = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    memory = plugins["memory"]
    assert memory["builtin"] is True
    assert memory["blocked"] is False
    assert memory["origin"].startswith("ifriend==")
    assert memory["registers"] == {
        "session_backends": ["memory"],
        "memory_backends": ["memory"],
        "channels": [],
    }


def test_plugins_shows_an_injected_plugin_as_third_party() -> None:
    plugin = failing_backend_plugin("ping", BackendUnavailableError("down"))
    result = invoke(["plugins", "--json"], plugins=[plugin])
    assert result.exit_code == 0, result.output
    plugins = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    assert plugins["failing_backend"]["builtin"] is False
    assert plugins["failing_backend"]["hooks"] == ["register_session_backends"]
    assert plugins["failing_backend"]["registers"]["session_backends"] == ["failing"]


def test_blocked_plugins_are_listed_as_blocked(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[plugins]\nblock = ["memory", "ghost"]\n')
    result = invoke(["--config", str(config), "plugins", "--json"])
    assert result.exit_code == 0, result.output
    plugins = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    assert plugins["memory"]["blocked"] is True
    assert plugins["memory"]["builtin"] is True
    assert plugins["memory"]["hooks"] == []
    assert plugins["ghost"] == {
        "name": "ghost",
        "origin": "not installed",
        "installed": False,
        "builtin": False,
        "blocked": True,
        "hooks": [],
        "registers": {"session_backends": [], "memory_backends": [], "channels": []},
    }
    text = invoke(["--config", str(config), "plugins"]).output
    assert "memory  (built-in, blocked, from ifriend==" in text
    assert "ghost  (blocked, not installed)" in text


# --- plugin commands -----------------------------------------------------------------------------


def _hello_commands(cli: click.Group) -> None:
    @cli.command()
    @click.pass_obj
    def hello(state: Any) -> None:
        """Say hello from a plugin."""
        click.echo(f"hello from a plugin of {state.settings().app.name}")


def test_a_plugin_adds_commands_through_register_commands() -> None:
    plugin = make_plugin("greeter", register_commands=_hello_commands)
    cli = load_cli(plugins=[plugin])
    runner = CliRunner()
    assert "hello" in runner.invoke(cli, ["--help"]).output
    result = runner.invoke(cli, ["hello"])
    assert result.exit_code == 0, result.output
    assert result.output == "hello from a plugin of ifriend\n"
    # the injected plugin is also part of the App the core commands build
    listed = json.loads(runner.invoke(cli, ["plugins", "--json"]).stdout)["plugins"]
    assert "register_commands" in {h for p in listed if p["name"] == "greeter" for h in p["hooks"]}


def test_each_cli_is_fresh() -> None:
    load_cli(plugins=[make_plugin("greeter", register_commands=_hello_commands)])
    assert "hello" not in load_cli().commands


def _broken_command_plugins() -> list[ModuleType]:
    def broken(cli: click.Group) -> None:
        raise RuntimeError("boom")

    def shadowing(cli: click.Group) -> None:
        @cli.command("doctor")
        def fake_doctor() -> None:
            click.echo("fake")

    return [
        make_plugin("broken", register_commands=broken),
        make_plugin("shadowing", register_commands=shadowing),
    ]


def test_a_broken_plugin_command_costs_only_its_own_commands() -> None:
    cli = load_cli(plugins=_broken_command_plugins())
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "fake" not in result.stdout
    assert "all checks passed" in result.stdout


def test_load_cli_warns_about_broken_plugins(capsys: pytest.CaptureFixture[str]) -> None:
    load_cli(plugins=_broken_command_plugins())
    err = capsys.readouterr().err
    assert "plugin 'broken' failed to add commands: RuntimeError: boom" in err
    assert "plugin 'shadowing' failed to add commands" in err
    assert "a command named 'doctor' already exists" in err


def test_main_calls_register_commands_of_installed_plugins(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`main()` builds the manager from entry points; stand one in through that manager."""
    greeter = make_plugin("greeter", register_commands=_hello_commands)

    def with_greeter(**kwargs: Any) -> Any:
        return build_plugin_manager(**{**kwargs, "extra": [*kwargs.get("extra", ()), greeter]})

    monkeypatch.setattr(ifriend.cli, "build_plugin_manager", with_greeter)
    with pytest.raises(SystemExit) as exit_info:
        ifriend.cli.main(["hello"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == "hello from a plugin of ifriend\n"


# --- config ----------------------------------------------------------------------------------


def test_config_shows_where_each_value_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, '[app]\nname = "helper"\n\n[session]\nbackend = "memory"\n')
    monkeypatch.setenv("SESSION_BACKEND", "inmemory")
    result = invoke(["--config", str(config), "config", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["source"] == str(config)
    assert data["settings"]["app"]["name"] == "helper"
    assert data["settings"]["session"]["backend"] == "memory"
    assert data["origins"]["app.name"] == str(config)
    assert data["origins"]["session.backend"] == "env:SESSION_BACKEND"
    assert data["origins"]["telemetry.exporter"] == "default"

    text = invoke(["--config", str(config), "config"]).stdout
    sections = text.split("\n\n")
    app = next(s for s in sections if s.startswith("[app]")).splitlines()
    session = next(s for s in sections if s.startswith("[session]")).splitlines()
    telemetry = next(s for s in sections if s.startswith("[telemetry]")).splitlines()
    assert _comment_of(app, 'name = "helper"') == str(config)
    assert _comment_of(session, 'backend = "memory"') == "env:SESSION_BACKEND"
    assert _comment_of(session, "max_id_length = 128") == "default"
    assert _comment_of(telemetry, 'exporter = "none"') == "default"


def _comment_of(lines: list[str], setting: str) -> str:
    line = next(line for line in lines if line.startswith(setting + " "))
    return line.partition("  # ")[2]


def test_config_file_comes_from_ifriend_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path, '[app]\nname = "from-env-file"\n')
    monkeypatch.setenv("IFRIEND_CONFIG", str(config))
    data = json.loads(invoke(["config", "--json"]).stdout)
    assert data["settings"]["app"]["name"] == "from-env-file"
    assert data["origins"]["app.name"] == str(config)


def test_config_never_prints_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYSQL_URL", f"mysql://bot:{SECRET_URL_PASSWORD}@db.internal:3306/ifriend")
    monkeypatch.setenv("CLOUDSQL_PASSWORD", SECRET_PASSWORD)
    config = write_config(tmp_path, '[channels.slack]\nbot_token = "xoxb-not-for-your-eyes"\n')
    for args in (["config"], ["config", "--json"]):
        result = invoke(["--config", str(config), *args])
        assert result.exit_code == 0, result.output
        for secret in (SECRET_URL_PASSWORD, SECRET_PASSWORD, "xoxb-not-for-your-eyes"):
            assert secret not in result.output
        assert "mysql://bot:***@db.internal:3306/ifriend" in result.output
        assert "env:CLOUDSQL_PASSWORD" in result.output
    data = json.loads(invoke(["--config", str(config), "config", "--json"]).stdout)
    assert data["settings"]["backends"]["mysql"]["password"] == "***"
    assert data["origins"]["backends.mysql.url"] == "env:MYSQL_URL"


def test_a_bad_setting_exits_2_naming_file_key_and_value(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[session]\nmax_id_length = "lots"\n')
    result = invoke(["--config", str(config), "config"])
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert str(config) in result.stderr
    assert "session.max_id_length" in result.stderr
    assert "'lots'" in result.stderr


@pytest.mark.parametrize("command", ["plugins", "doctor", "run"])
def test_every_command_reports_a_bad_config_with_exit_2(tmp_path: Path, command: str) -> None:
    result = invoke(["--config", str(tmp_path / "missing.toml"), command])
    assert result.exit_code == 2
    assert "config file not found" in result.stderr
    assert "Traceback" not in result.output


def test_an_ifriend_error_exits_1_without_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_BACKEND", "nowhere")
    result = invoke(["doctor"])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "no session backend named 'nowhere'" in result.stderr
    assert "Traceback" not in result.output


# --- doctor ------------------------------------------------------------------------------------


def test_doctor_passes_on_the_memory_backend() -> None:
    result = invoke(["doctor"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0] + " " + line.split()[1]: line for line in result.stdout.splitlines()[1:-1]}
    for check in ("connect memory", "session ping", "session round", "memory search", "close memory"):
        assert " OK " in rows[check], result.stdout
        assert " ms" in rows[check]
    assert result.stdout.splitlines()[-1] == "all checks passed"


def test_doctor_fails_when_a_backend_ping_raises(tmp_path: Path) -> None:
    # The error text carries a URL with a password, as drivers' errors sometimes do.
    url = f"redis://:{SECRET_URL_PASSWORD}@cache:6379/0"
    plugin = failing_backend_plugin("ping", BackendUnavailableError(f"cannot reach {url}"))
    config = write_config(tmp_path, f'[session]\nbackend = "failing"\n\n[backends.failing]\nurl = "{url}"\n')
    result = invoke(["--config", str(config), "doctor"], plugins=[plugin])
    assert result.exit_code == 1, result.output
    ping = next(line for line in result.stdout.splitlines() if line.startswith("session ping"))
    assert "failing" in ping and "FAIL" in ping
    assert "BackendUnavailableError: cannot reach redis://:***@cache:6379/0" in ping
    assert SECRET_URL_PASSWORD not in result.output
    assert "1 of 5 checks failed" in result.stdout
    assert "Traceback" not in result.output


def test_doctor_times_out_a_check_that_never_answers() -> None:
    plugin = failing_backend_plugin("ping", None)
    result = CliRunner(env={"SESSION_BACKEND": "failing"}).invoke(
        create_cli(), ["doctor", "--timeout", "0.05"], obj={"plugins": [plugin]}
    )
    assert result.exit_code == 1, result.output
    ping = next(line for line in result.stdout.splitlines() if line.startswith("session ping"))
    assert "FAIL" in ping and "TimeoutError: no answer within 0.05 s" in ping
    round_trip = next(line for line in result.stdout.splitlines() if line.startswith("session round"))
    assert " OK " in round_trip  # the other checks still ran


def test_doctor_reports_a_failed_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_BACKEND", "failing")
    plugin = failing_backend_plugin("connect", ConnectionRefusedError(111, "Connection refused"))
    result = invoke(["doctor"], plugins=[plugin])
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[1].startswith("connect") and "FAIL" in lines[1]
    assert "ConnectionRefusedError" in lines[1]
    assert lines[-1] == "1 of 1 checks failed"


def test_doctor_rejects_a_non_positive_timeout() -> None:
    assert invoke(["doctor", "--timeout", "0"]).exit_code == 2


# --- run -----------------------------------------------------------------------------------------


def test_run_exits_0_on_the_default_config() -> None:
    result = invoke(["run"])
    assert result.exit_code == 0, result.output
    assert "session backend: memory (from plugin memory)" in result.stdout
    assert "memory backend: memory (from plugin memory)" in result.stdout
    assert "channels enabled: none" in result.stdout
    assert "all checks passed" in result.stdout
    assert "No channel is enabled" in result.stdout


def test_run_refuses_to_start_when_a_check_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_BACKEND", "failing")
    plugin = failing_backend_plugin("ping", BackendUnavailableError("down"))
    result = invoke(["run"], plugins=[plugin])
    assert result.exit_code == 1
    assert "No channel is enabled" not in result.stdout


def test_run_names_an_enabled_channel_no_plugin_registers(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[channels.nosuch]\n")
    result = invoke(["--config", str(config), "run"])
    assert result.exit_code == 1
    assert "[channels.nosuch] is configured, but no plugin registers" in result.stderr


# --- the installed script ------------------------------------------------------------------------


def test_the_console_script_runs(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("ifriend")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "ifriend.cli"]
    done = subprocess.run(
        [*command, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    for name in ("config", "doctor", "plugins", "run"):
        assert name in done.stdout
