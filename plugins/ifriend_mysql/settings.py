"""`[backends.mysql]`: where the server is, and how the store uses it.

A server is named either by `url` or by the discrete fields (which the
`CLOUDSQL_*` variables set). Both may be given: the fields then fill in what
the URL leaves out (typically the password), and a field that contradicts
the URL is an error rather than a silent preference. `tls = true` encrypts the
connection, verifying the server as the `tls_*` options say (`ifriend.tls`).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from ifriend.plugin_api import TlsOptions, url_port

SCHEMES = ("mysql", "mysql+asyncmy", "mariadb", "mariadb+asyncmy")
DEFAULT_PORT = 3306


@dataclass(frozen=True)
class Target:
    """The resolved server address and credentials (repr hides the password)."""

    host: str
    port: int
    database: str
    user: str
    password: str = field(default="", repr=False)
    unix_socket: str | None = None
    tls: ssl.SSLContext | None = field(default=None, repr=False)

    def describe(self) -> str:
        """`user@host:port/database` (or `@unix:/path`), never the password."""
        where = f"unix:{self.unix_socket}" if self.unix_socket else f"{self.host}:{self.port}"
        return f"{self.user}@{where}/{self.database}"

    def connect_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "database": self.database,
        }
        if self.unix_socket:
            kwargs["unix_socket"] = self.unix_socket
        if self.tls is not None:
            kwargs["ssl"] = self.tls
        return kwargs


class MySQLSettings(TlsOptions):
    """Options of the `mysql` session backend."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: SecretStr | None = None
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    database: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    unix_socket: str | None = None
    pool_min: int = Field(1, ge=0)
    pool_max: int = Field(10, ge=1)
    timeout_seconds: float = Field(5.0, gt=0, le=3600)
    table_prefix: str = Field("ifriend_", pattern=r"^[A-Za-z0-9_]{0,32}$")
    create_schema: bool = True
    tls: bool = False

    @field_validator("url")
    @classmethod
    def _url_parses(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and url.get_secret_value().strip():
            _parse_url(url.get_secret_value().strip())
        return url

    @model_validator(mode="after")
    def _check(self) -> MySQLSettings:
        if self.pool_min > self.pool_max:
            raise ValueError(f"pool_min ({self.pool_min}) exceeds pool_max ({self.pool_max})")
        if self.tls_options_given and not self.tls:
            raise ValueError("tls_ca_file, tls_cert_file, tls_key_file and tls_verify need tls = true")
        self.target()  # raises ValueError naming what is missing or inconsistent
        return self

    def target(self) -> Target:
        """Merge `url` and the discrete fields; `ValueError` if they disagree or lack a part."""
        given = {
            "host": self.host or None,
            "port": self.port,
            "database": self.database or None,
            "user": self.user or None,
            "password": self.password.get_secret_value() if self.password else None,
            "unix_socket": self.unix_socket or None,
        }
        merged = dict(given)
        url = self.url.get_secret_value().strip() if self.url is not None else ""
        if url:  # an empty url (an unset "${MYSQL_URL:-}") is no url
            for name, value in _parse_url(url).items():
                if value is None:
                    continue
                if given[name] is not None and not _same(name, given[name], value):
                    shown = "" if name == "password" else f" ({name} = {given[name]!r})"
                    raise ValueError(
                        f"url and {name} disagree{shown}: give one of them, or make them match"
                    )
                merged[name] = value
        missing = [n for n in ("database", "user") if not merged[n]]
        if missing:
            raise ValueError(
                f'no {" or ".join(missing)} given: set url = "mysql://USER:PASSWORD@HOST:PORT/DB" '
                "or host/port/database/user/password (CLOUDSQL_* variables)"
            )
        return Target(
            host=merged["host"] or ("localhost" if merged["unix_socket"] else "127.0.0.1"),
            port=merged["port"] or DEFAULT_PORT,
            database=merged["database"],
            user=merged["user"],
            password=merged["password"] or "",
            unix_socket=merged["unix_socket"],
            tls=self.context() if self.tls else None,
        )


def _same(name: str, a: Any, b: Any) -> bool:
    return a.lower() == b.lower() if name == "host" else a == b


def _parse_url(url: str) -> dict[str, Any]:
    """The parts a `mysql://user:pw@host:port/db?unix_socket=...` URL names (None if absent)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValueError("url is not a valid URL (expected mysql://USER:PASSWORD@HOST:PORT/DB)") from None
    port = url_port(parts)
    if parts.scheme.lower() not in SCHEMES:
        raise ValueError(f"url scheme {parts.scheme!r} is not one of {', '.join(SCHEMES)}")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"unix_socket", "charset"})
    if unknown:
        raise ValueError(f"url has unsupported query parameters: {', '.join(unknown)}")
    if query.get("charset", ["utf8mb4"])[-1].lower() != "utf8mb4":
        raise ValueError("url charset must be utf8mb4 (the store always uses utf8mb4)")
    database = unquote(parts.path.lstrip("/")) or None
    if database is not None and "/" in database:
        raise ValueError("url path must be a single database name")
    return {
        "host": parts.hostname or None,
        "port": port,
        "database": database,
        "user": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password is not None else None,
        "unix_socket": query["unix_socket"][-1] if "unix_socket" in query else None,
    }
