"""A MariaDB of one test's own, which it may kill (SIGKILL) and start again on the same data."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from ..servers import free_port


class PrivateMariaDB:
    """mariadbd on 127.0.0.1 with a data directory under `directory`; root without password."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.datadir = directory / "data"
        self.socket = directory / "m.sock"

    @property
    def url(self) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/faults"

    def _args(self) -> list[str]:
        args = [
            "--no-defaults", f"--datadir={self.datadir}", f"--socket={self.socket}",
            f"--port={self.port}", "--bind-address=127.0.0.1", "--skip-name-resolve",
            "--character-set-server=utf8mb4", "--collation-server=utf8mb4_bin",
            "--innodb_flush_log_at_trx_commit=1", "--innodb_buffer_pool_size=32M",
            f"--log-error={self.directory / 'error.log'}",
        ]
        return [*args, "--user=root"] if os.geteuid() == 0 else args

    def start(self) -> None:
        binary = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        if not self.datadir.exists():
            install = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
            subprocess.run(
                [install, *self._args()[:2], "--auth-root-authentication-method=normal",
                 "--skip-test-db", *(["--user=root"] if os.geteuid() == 0 else [])],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
            )
        self.process = subprocess.Popen(
            [binary, *self._args()], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                assert self.process.poll() is None, (self.directory / "error.log").read_text()[-2000:]
                time.sleep(0.05)
        else:
            raise RuntimeError(f"private mariadbd did not start on port {self.port}")
        client = shutil.which("mariadb") or "/usr/bin/mariadb"
        subprocess.run(
            [client, "--no-defaults", f"--socket={self.socket}", "-uroot",
             "-e", "CREATE DATABASE IF NOT EXISTS faults CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"],
            check=True, timeout=30,
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None
