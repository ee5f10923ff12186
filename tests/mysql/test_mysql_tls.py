"""MySQL over TLS, against a MariaDB this module starts with certificates it generates and
with insecure transport refused: the CA, host name and client certificate checks."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from ifriend_mysql.settings import MySQLSettings

from ifriend import App, Settings
from ifriend.errors import BackendUnavailableError, ConfigError

from tests.certificates import Pki, make_pki
from tests.faults.mariadb import PrivateMariaDB

PASSWORD = "tls-pw-4821"


class TlsMariaDB(PrivateMariaDB):
    """A private MariaDB that speaks TLS only, with a user that needs a client certificate."""

    def __init__(self, directory: Path, pki: Pki) -> None:
        super().__init__(directory)
        self.pki = pki

    def _args(self) -> list[str]:
        return [
            *super()._args(),
            f"--ssl-ca={self.pki.ca}",
            f"--ssl-cert={self.pki.server_cert}",
            f"--ssl-key={self.pki.server_key}",
            "--require-secure-transport=ON",
        ]

    def start(self) -> None:
        super().start()
        self.sql(
            f"CREATE USER 'bot'@'%' IDENTIFIED BY '{PASSWORD}' REQUIRE SSL;"
            "GRANT ALL ON faults.* TO 'bot'@'%';"
            f"CREATE USER 'certified'@'%' IDENTIFIED BY '{PASSWORD}' REQUIRE X509;"
            "GRANT ALL ON faults.* TO 'certified'@'%';"
        )

    def sql(self, statements: str) -> None:
        client = shutil.which("mariadb") or "/usr/bin/mariadb"
        subprocess.run(
            [client, "--no-defaults", f"--socket={self.socket}", "-uroot", "-e", statements],
            check=True, timeout=30,
        )

    def url_for(self, user: str = "bot", host: str = "localhost") -> str:
        return f"mysql://{user}:{PASSWORD}@{host}:{self.port}/faults"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsMariaDB]:
    directory = tmp_path_factory.mktemp("tls-mariadb")
    # The certificate names localhost only: 127.0.0.1 reaches the server under another name.
    db = TlsMariaDB(directory, make_pki(directory / "pki", server_names=("localhost",)))
    db.start()
    try:
        yield db
    finally:
        db.stop()


def settings(server: TlsMariaDB, **mysql: Any) -> Settings:
    options = {"url": server.url_for(), "timeout_seconds": 5, **mysql}
    return Settings.model_validate(
        {
            "session": {"backend": "mysql"},
            "memory": {"backend": "mysql"},
            "backends": {"mysql": options},
        }
    )


@pytest.fixture
async def tls_cipher() -> AsyncIterator[Any]:
    """`await tls_cipher(settings)`: the cipher of a connection made with those settings."""
    import asyncmy

    async def cipher(options: dict[str, Any]) -> str:
        target = MySQLSettings.model_validate(options).target()
        conn = await asyncmy.connect(**target.connect_kwargs())
        try:
            async with conn.cursor() as cursor:
                await cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
                (_, value) = await cursor.fetchone()
                return value
        finally:
            conn.close()

    yield cipher


async def round_trip(app: App) -> None:
    from google.adk.events.event import Event

    service = app.session_service
    session = await service.create_session(app_name="tls", user_id="u", state={"k": 1})
    await service.append_event(session, Event(author="user", invocation_id="i"))
    stored = await service.get_session(app_name="tls", user_id="u", session_id=session.id)
    assert stored is not None and len(stored.events) == 1 and stored.state == {"k": 1}
    await app.memory_service.search_memory(app_name="tls", user_id="u", query="anything")
    await service.delete_session(app_name="tls", user_id="u", session_id=session.id)


async def test_sessions_and_memory_over_tls_with_the_ca_and_host_name_verified(server, tls_cipher) -> None:
    async with App(settings(server, tls=True, tls_ca_file=str(server.pki.ca))) as app:
        await round_trip(app)
    assert await tls_cipher({"url": server.url_for(), "tls": True, "tls_ca_file": str(server.pki.ca)})


async def test_a_client_certificate_is_presented(server) -> None:
    pki = server.pki
    certified = {"url": server.url_for("certified"), "tls": True, "tls_ca_file": str(pki.ca)}
    with pytest.raises(BackendUnavailableError, match="access denied"):
        async with App(settings(server, **certified)):
            pass
    with_cert = {**certified, "tls_cert_file": str(pki.client_cert), "tls_key_file": str(pki.client_key)}
    async with App(settings(server, **with_cert)) as app:
        await round_trip(app)


async def test_without_tls_a_server_that_requires_it_refuses_with_a_typed_error(server) -> None:
    with pytest.raises(BackendUnavailableError, match=r"MySQL \(bot@localhost:\d+/faults\) connect failed"):
        async with App(settings(server)):
            pass


async def test_a_server_signed_by_another_ca_is_refused(server) -> None:
    with pytest.raises(BackendUnavailableError, match="TLS: certificate verify failed"):
        async with App(settings(server, tls=True, tls_ca_file=str(server.pki.other_ca))):
            pass
    # Unless verification is off (a test setup, never production).
    async with App(settings(server, tls=True, tls_ca_file=str(server.pki.other_ca), tls_verify="none")) as app:
        await round_trip(app)


async def test_a_host_name_the_certificate_does_not_name_is_refused_unless_only_the_ca_is_checked(server) -> None:
    other_host = {"url": server.url_for(host="127.0.0.1"), "tls": True, "tls_ca_file": str(server.pki.ca)}
    with pytest.raises(BackendUnavailableError, match="TLS: .*mismatch"):
        async with App(settings(server, **other_host)):
            pass
    async with App(settings(server, **other_host, tls_verify="ca")) as app:
        await round_trip(app)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tls": True, "tls_ca_file": "/nonexistent/ca.pem"}, "tls_ca_file: no such file"),
        ({"tls_ca_file": "{ca}"}, "need tls = true"),
        ({"tls": True, "tls_key_file": "{ca}"}, "tls_key_file needs tls_cert_file"),
        ({"tls": True, "tls_ca_file": "{key}"}, "tls_ca_file is not a PEM file"),
        ({"tls": True, "tls_verify": "maybe"}, "tls_verify"),
    ],
)
def test_tls_settings_that_cannot_work_are_config_errors(server, options, message) -> None:
    files = {"ca": str(server.pki.ca), "key": str(server.pki.server_key)}
    options = {k: v.format(**files) if isinstance(v, str) else v for k, v in options.items()}
    with pytest.raises(ConfigError, match=message) as caught:
        App(settings(server, **options))
    assert caught.value.key.startswith("backends.mysql")
    assert PASSWORD not in str(caught.value)
