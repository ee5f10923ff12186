"""TLS options shared by the backends that talk to a server (`tls_*` settings -> `SSLContext`).

    tls_ca_file   = "ca.pem"      # the CAs that sign the server's certificate; default: the system's
    tls_cert_file = "client.pem"  # a client certificate (and its key, or tls_key_file)
    tls_key_file  = "client.key"
    tls_verify    = "identity"    # identity: CA and host name | ca: CA only | none: no checks
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, model_validator

TlsVerify = Literal["identity", "ca", "none"]


class TlsOptions(BaseModel):
    """The `tls_*` keys of a backend's table; `context()` builds the client's `SSLContext`."""

    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_verify: TlsVerify = "identity"

    @property
    def tls_options_given(self) -> bool:
        return bool(
            self.tls_ca_file or self.tls_cert_file or self.tls_key_file or self.tls_verify != "identity"
        )

    @model_validator(mode="after")
    def _files_exist(self) -> TlsOptions:
        if self.tls_key_file and not self.tls_cert_file:
            raise ValueError("tls_key_file needs tls_cert_file (the certificate it belongs to)")
        for name in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
            path = getattr(self, name)
            if path and not Path(path).expanduser().is_file():
                raise ValueError(f"{name}: no such file: {path}")
        return self

    def context(self) -> ssl.SSLContext:
        """A client `SSLContext`; `ValueError` naming the setting if a file is not usable."""
        ca = str(Path(self.tls_ca_file).expanduser()) if self.tls_ca_file else None
        try:
            context = ssl.create_default_context(cafile=ca)
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(f"tls_ca_file is not a PEM file of CA certificates ({exc})") from None
        if self.tls_verify != "identity":
            context.check_hostname = False
        if self.tls_verify == "none":
            context.verify_mode = ssl.CERT_NONE
        if self.tls_cert_file:
            key = str(Path(self.tls_key_file).expanduser()) if self.tls_key_file else None
            try:
                context.load_cert_chain(str(Path(self.tls_cert_file).expanduser()), keyfile=key)
            except (ssl.SSLError, OSError) as exc:
                raise ValueError(
                    f"tls_cert_file / tls_key_file are not a PEM certificate and its key ({exc})"
                ) from None
        return context
