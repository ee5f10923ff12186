"""`[backends.redis]`: the Redis session store's settings.

A `rediss://` url speaks TLS, verifying the server as the `tls_*` options say
(`ifriend.tls`); an ACL user goes in the url (`rediss://USER:PASSWORD@host:6380/0`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ifriend.plugin_api import TlsOptions, url_port

_SCHEMES = ("redis", "rediss", "unix")
# tls_verify -> redis-py's (ssl_cert_reqs, ssl_check_hostname)
_VERIFY = {"identity": ("required", True), "ca": ("required", False), "none": ("none", False)}


class RedisSettings(TlsOptions):
    """Validated `[backends.redis]` table (`REDIS_URL`, `REDIS_SESSION_TTL`... map here)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = "redis://127.0.0.1:6379/0"
    # A Redis Cluster: `url` names any node; the others are found from it.
    cluster: bool = False
    key_prefix: str = Field("ifriend", min_length=1, max_length=64, pattern=r"^[^{}\s]+$")
    session_ttl_seconds: int = Field(3600, gt=0)
    memory_ttl_days: int = Field(30, gt=0)
    timeout_seconds: float = Field(2.0, gt=0)
    # Per server (per node of a cluster); callers beyond it wait, up to their deadline.
    max_connections: int = Field(50, gt=0)
    # TTL of the app/user state hashes; None keeps them until deleted.
    state_ttl: int | None = Field(None, gt=0)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in _SCHEMES:
            raise ValueError(f"a redis URL starts with {', '.join(s + '://' for s in _SCHEMES)}")
        url_port(parts)
        return url

    @field_validator("cluster")
    @classmethod
    def _cluster_url(cls, cluster: bool, info: ValidationInfo) -> bool:
        url = info.data.get("url")
        if cluster and url is not None:
            parts = urlsplit(url)
            if parts.scheme == "unix":
                raise ValueError("a redis:// or rediss:// url naming a cluster node (not unix://)")
            if parts.path.strip("/") not in ("", "0"):
                raise ValueError("a url with database 0 (/0 or no path): a cluster has no other")
        return cluster

    @model_validator(mode="after")
    def _tls_needs_rediss(self) -> RedisSettings:
        if urlsplit(self.url).scheme == "rediss":
            self.context()  # a ValueError naming the file that is not usable
        elif self.tls_options_given:
            raise ValueError("tls_ca_file, tls_cert_file, tls_key_file and tls_verify need a rediss:// url")
        return self

    @property
    def password(self) -> str | None:
        """The password inside `url`, so error messages can mask it."""
        return urlsplit(self.url).password

    def tls_kwargs(self) -> dict[str, Any]:
        """redis-py's `ssl_*` connection arguments for a `rediss://` url (none otherwise)."""
        if urlsplit(self.url).scheme != "rediss":
            return {}
        cert_reqs, check_hostname = _VERIFY[self.tls_verify]
        return {
            "ssl_cert_reqs": cert_reqs,
            "ssl_check_hostname": check_hostname,
            "ssl_ca_certs": self.tls_ca_file,
            "ssl_certfile": self.tls_cert_file,
            "ssl_keyfile": self.tls_key_file,
        }
