"""Redis over TLS (`rediss://` and the `tls_*` options) and ACL users in the url, against a
redis-server this module starts with certificates it generates: the CA, host name and
client certificate checks, users with passwords and key patterns, clear typed errors."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.adk.events.event import Event

from ifriend import App, Settings
from ifriend.errors import BackendUnavailableError, ConfigError
from tests.certificates import Pki, make_pki
from tests.servers import PrivateRedis, free_port

PASSWORD = "acl-pw-5518"


class TlsRedis(PrivateRedis):
    """A private redis-server that also listens on a TLS port requiring client certificates,
    with ACL users: the default user may only PING, `bot` may touch every key, `scoped`
    only `scoped:*`."""

    def __init__(self, directory: Path, pki: Pki) -> None:
        super().__init__(directory)
        self.pki = pki
        self.tls_port = free_port()
        self.extra_args = [
            "--tls-port", str(self.tls_port),
            "--tls-cert-file", str(pki.server_cert), "--tls-key-file", str(pki.server_key),
            "--tls-ca-cert-file", str(pki.ca), "--tls-auth-clients", "yes",
            "--user", "default", "on", "nopass", "-@all", "+ping",
            "--user", "bot", "on", f">{PASSWORD}", "~*", "+@all",
            "--user", "scoped", "on", f">{PASSWORD}", "~scoped:*", "+@all",
        ]

    def url_for(self, *, user: str = "bot", password: str = PASSWORD, host: str = "localhost", tls: bool = True) -> str:
        scheme, port = ("rediss", self.tls_port) if tls else ("redis", self.port)
        userinfo = f"{user}:{password}@" if user else ""
        return f"{scheme}://{userinfo}{host}:{port}/0"

    def client_files(self) -> dict[str, str]:
        return {"tls_cert_file": str(self.pki.client_cert), "tls_key_file": str(self.pki.client_key)}

    def trusted(self) -> dict[str, str]:
        return {"tls_ca_file": str(self.pki.ca), **self.client_files()}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    directory = tmp_path_factory.mktemp("tls-redis")
    # The certificate names localhost only: 127.0.0.1 reaches the server under another name.
    redis = TlsRedis(directory, make_pki(directory / "pki", server_names=("localhost",)))
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


def settings(**redis: Any) -> Settings:
    return Settings.model_validate(
        {
            "session": {"backend": "redis"},
            "memory": {"backend": "redis"},
            "backends": {"redis": {"timeout_seconds": 2, **redis}},
        }
    )


async def round_trip(app: App) -> None:
    service = app.session_service
    session = await service.create_session(app_name="tls", user_id="u", state={"user:k": 1})
    await service.append_event(session, Event(author="user", invocation_id="i"))
    stored = await service.get_session(app_name="tls", user_id="u", session_id=session.id)
    assert stored is not None and len(stored.events) == 1 and stored.state == {"user:k": 1}
    await app.memory_service.search_memory(app_name="tls", user_id="u", query="anything")
    await service.delete_session(app_name="tls", user_id="u", session_id=session.id)


async def test_sessions_and_memory_over_tls_with_the_ca_host_name_and_client_certificate(server) -> None:
    async with App(settings(url=server.url_for(), **server.trusted())) as app:
        await round_trip(app)
        client = app.session_service.store.client.redis  # redis-py on the same settings
        assert await client.execute_command("ACL", "WHOAMI") == b"bot"


async def test_without_a_client_certificate_the_server_refuses(server) -> None:
    with pytest.raises(BackendUnavailableError):
        async with App(settings(url=server.url_for(), tls_ca_file=str(server.pki.ca))):
            pass


async def test_a_server_signed_by_another_ca_is_refused_unless_verification_is_off(server) -> None:
    with pytest.raises(BackendUnavailableError, match="certificate verify failed"):
        async with App(settings(url=server.url_for(), tls_ca_file=str(server.pki.other_ca), **server.client_files())):
            pass
    async with App(
        settings(url=server.url_for(), tls_ca_file=str(server.pki.other_ca), tls_verify="none", **server.client_files())
    ) as app:
        await round_trip(app)


async def test_a_host_name_the_certificate_does_not_name_is_refused_unless_only_the_ca_is_checked(server) -> None:
    other_name = server.url_for(host="127.0.0.1")
    with pytest.raises(BackendUnavailableError, match="certificate verify failed"):
        async with App(settings(url=other_name, **server.trusted())):
            pass
    async with App(settings(url=other_name, tls_verify="ca", **server.trusted())) as app:
        await round_trip(app)


async def test_an_acl_user_limited_to_the_key_prefix_runs_the_store(server) -> None:
    async with App(settings(url=server.url_for(user="scoped"), key_prefix="scoped", **server.trusted())) as app:
        await round_trip(app)
    with pytest.raises(BackendUnavailableError):
        async with App(settings(url=server.url_for(user="scoped"), key_prefix="other", **server.trusted())) as app:
            await round_trip(app)


@pytest.mark.parametrize("tls", [True, False], ids=["rediss", "redis"])
async def test_a_wrong_password_or_no_user_is_a_typed_error_that_never_shows_the_password(server, tls) -> None:
    files = server.trusted() if tls else {}
    with pytest.raises(BackendUnavailableError) as wrong:
        async with App(settings(url=server.url_for(password="not-the-pw-77", tls=tls), **files)):
            pass
    assert "not-the-pw-77" not in str(wrong.value)
    with pytest.raises(BackendUnavailableError):
        async with App(settings(url=server.url_for(user="", tls=tls), **files)):
            pass
    async with App(settings(url=server.url_for(tls=tls), **files)) as app:  # the plain port too
        await round_trip(app)


def test_the_server_speaks_tls_only_on_its_tls_port(server) -> None:
    context = ssl.create_default_context(cafile=str(server.pki.ca))
    context.load_cert_chain(str(server.pki.client_cert), str(server.pki.client_key))
    with socket.create_connection(("localhost", server.tls_port), timeout=2) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"PING\r\n")
            assert tls.recv(64) == b"+PONG\r\n"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "redis://localhost:6379/0", "tls_ca_file": "{ca}"}, "need a rediss:// url"),
        ({"url": "rediss://localhost:6380/0", "tls_ca_file": "/nonexistent/ca.pem"}, "tls_ca_file: no such file"),
        ({"url": "rediss://localhost:6380/0", "tls_ca_file": "{key}"}, "tls_ca_file is not a PEM file"),
        ({"url": "rediss://localhost:6380/0", "tls_cert_file": "{ca}"}, "tls_cert_file / tls_key_file"),
        ({"url": f"redis://:{PASSWORD}@localhost:99999/0"}, "port is not a number"),
        ({"url": f"redis://:{PASSWORD}@localhost:abc/0"}, "port is not a number"),
    ],
)
def test_redis_settings_that_cannot_work_are_config_errors(server, options, message) -> None:
    files = {"ca": str(server.pki.ca), "key": str(server.pki.server_key)}
    options = {k: v.format(**files) for k, v in options.items()}
    with pytest.raises(ConfigError, match=message) as caught:
        App(settings(**options))
    assert caught.value.key.startswith("backends.redis")
    assert PASSWORD not in str(caught.value)
