"""`adk api_server` / `adk web` as real processes on free ports: bounded waits, always killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ..servers import free_port

ADK = str(Path(sys.executable).with_name("adk"))
STARTUP_SECONDS = 60.0


class AdkServer:
    """`with AdkServer("api_server", agents, uri) as server:` then `server.get(...)`."""

    def __init__(
        self, command: str, agents_dir: Path, *, session_uri: str, memory_uri: str | None = None,
        cwd: Path | None = None, log: Path, env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.args = [
            ADK, command, str(agents_dir), "--host", "127.0.0.1", "--port", str(self.port),
            "--session_service_uri", session_uri,
            "--memory_service_uri", memory_uri or session_uri,
        ]
        self.cwd = cwd or agents_dir.parent
        self.env = {**_env(), **(env or {})}
        self.log_path = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> AdkServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.args, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"adk exited with {self.process.returncode}:\n{self.log()}")
            try:
                self.request("GET", "/list-apps", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"adk did not answer within {STARTUP_SECONDS:g} s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send `sig` and wait for the exit; its return code."""
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request(self, method: str, path: str, body: Any = None, *, timeout: float = 30) -> tuple[int, bytes]:
        import json

        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def json(self, method: str, path: str, body: Any = None) -> Any:
        import json

        status, raw = self.request(method, path, body)
        assert status == 200, f"{method} {path}: {status} {raw[:500]!r}\n{self.log()[-3000:]}"
        return json.loads(raw)


def run_adk(args: list[str], *, cwd: Path, timeout: float = STARTUP_SECONDS) -> subprocess.CompletedProcess[str]:
    """`adk ARGS` that is expected to exit by itself (bounded)."""
    return subprocess.run(
        [ADK, *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout
    )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IFRIEND__", "PYTEST"))}
    env.pop("IFRIEND_CONFIG", None)
    # Artifacts in memory: no .adk folders left in the agents folder.
    env.update({"ADK_DISABLE_LOCAL_STORAGE": "1", "PYTHONUNBUFFERED": "1"})
    return env
