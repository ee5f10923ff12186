"""Real `adk api_server` and `adk web` processes on ifriend's tiered store (shared Redis and
MariaDB), with `services.py` registering the `ifriend:` scheme and an `ifriend-echo` agent."""

from __future__ import annotations

import signal
from pathlib import Path

from ifriend import App

from .adk_process import AdkServer, run_adk
from .agents import AGENT


def say(server: AdkServer, session_id: str, text: str) -> str:
    events = server.json(
        "POST",
        "/run",
        {
            "app_name": AGENT,
            "user_id": "ada",
            "session_id": session_id,
            "new_message": {"role": "user", "parts": [{"text": text}]},
        },
    )
    return "".join(p.get("text", "") for e in events for p in (e.get("content") or {}).get("parts", []))


def texts(session: dict) -> list[str]:
    return ["".join(p.get("text", "") for p in e["content"]["parts"]) for e in session["events"]]


async def test_api_server_keeps_conversations_in_ifriend_across_restarts(
    agents_dir: Path, tiered_config: Path, tmp_path: Path
) -> None:
    uri = f"ifriend://{tiered_config}"
    log = tmp_path / "api_server.log"
    with AdkServer("api_server", agents_dir, session_uri=uri, log=log) as server:
        created = server.json("POST", f"/apps/{AGENT}/users/ada/sessions/s1", {})
        assert created["id"] == "s1"
        first = say(server, "s1", "my name is Ada")
        assert first == '[ifriend-echo] You said: "my name is Ada". This is the start of our conversation.'
        second = say(server, "s1", "what is my name?")
        assert 'Earlier you said: "my name is Ada"' in second
        # SIGTERM, as Cloud Run and Kubernetes stop a container: a graceful stop that closes ifriend.
        assert server.stop(signal.SIGTERM) == 128 + signal.SIGTERM
    first_run = log.read_text()
    # One set of connections for both URIs, opened on first use, closed at the stop.
    assert first_run.count("ifriend services connected (sessions: tiered, memory: mysql") == 1
    assert "ifriend services closed" in first_run
    assert "DatabaseSessionService" not in first_run
    assert "Traceback" not in first_run and "Unclosed" not in first_run

    with AdkServer("api_server", agents_dir, session_uri=uri, log=log) as server:
        session = server.json("GET", f"/apps/{AGENT}/users/ada/sessions/s1")
        assert texts(session) == ["my name is Ada", first, "what is my name?", second]
        third = say(server, "s1", "and now?")
        assert 'your first message was "my name is Ada"' in third
        server.stop(signal.SIGINT)  # Ctrl-C (click reports it as "Aborted!", status 1)
    assert log.read_text().count("ifriend services closed") == 2

    # ifriend's own App on the same file reads the same conversation.
    async with App.from_toml(tiered_config) as app:
        found = await app.session_service.get_session(app_name=AGENT, user_id="ada", session_id="s1")
        assert found is not None
        assert [e.author for e in found.events] == ["user", AGENT] * 3
        assert found.events[-1].content.parts[0].text == third


async def test_adk_web_serves_its_page_on_ifriend(agents_dir: Path, tiered_config: Path, tmp_path: Path) -> None:
    uri = f"ifriend://{tiered_config}"
    with AdkServer("web", agents_dir, session_uri=uri, log=tmp_path / "web.log") as server:
        status, page = server.request("GET", "/dev-ui/")
        assert status == 200
        assert b"<app-root" in page or b"<html" in page.lower()
        assert server.json("GET", "/list-apps") == [AGENT]
        server.json("POST", f"/apps/{AGENT}/users/ada/sessions/web1", {})
        assert say(server, "web1", "hello").startswith("[ifriend-echo]")
        server.stop(signal.SIGINT)
    assert "ifriend services connected (sessions: tiered" in server.log()
    assert "ifriend services closed" in server.log()


async def test_the_layout_adk_deploy_cloud_run_builds_loads_services_py(
    agents_dir: Path, tiered_config: Path, tmp_path: Path
) -> None:
    """`adk deploy cloud_run --extra_packages agents/services.py ... agents/echo_agent` puts the
    agent in /app/agents/echo_agent, services.py in /app with /app on PYTHONPATH, and runs
    `adk api_server /app/agents` (see docs/deploy.md): the ifriend scheme is registered."""
    app = tmp_path / "app"
    (app / "agents").mkdir(parents=True)
    (agents_dir / "services.py").rename(app / "services.py")
    (agents_dir / AGENT).rename(app / "agents" / AGENT)
    config = app / "agents" / AGENT / "ifriend.toml"
    config.write_text(tiered_config.read_text())
    with AdkServer(
        "api_server", app / "agents", session_uri=f"ifriend://{config}", cwd=app,
        env={"PYTHONPATH": str(app)}, log=tmp_path / "deployed.log",
    ) as server:
        server.json("POST", f"/apps/{AGENT}/users/ada/sessions/d1", {})
        assert say(server, "d1", "hello").startswith("[ifriend-echo]")
        assert server.stop() == 128 + signal.SIGTERM
    assert "ifriend services connected (sessions: tiered" in server.log()


def test_a_bad_uri_stops_the_server_with_a_message_naming_it(agents_dir: Path) -> None:
    done = run_adk(
        ["api_server", str(agents_dir), "--port", "0", "--session_service_uri", "ifriend://conf/x.toml"],
        cwd=agents_dir.parent,
    )
    assert done.returncode != 0
    assert "bad ifriend service URI 'ifriend://conf/x.toml': it names the host 'conf'" in done.stderr + done.stdout
