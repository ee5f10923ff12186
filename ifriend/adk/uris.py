"""`ifriend:` URIs: which settings file a session or memory service URI names."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from ..config import find_config_file
from ..errors import ConfigError

SCHEME = "ifriend"
URI_FORMS = "ifriend:///abs/path/ifriend.toml, ifriend:relative/path.toml or ifriend://"


def uri_of(config: Path) -> str:
    """The `ifriend:///...` URI naming `config` by its absolute path."""
    return f"{SCHEME}://{quote(str(config.resolve()))}"


def config_file(uri: str, *, env: Mapping[str, str] | None = None) -> Path:
    """The settings file an `ifriend:` URI names; `ConfigError` naming the URI if none."""
    env = os.environ if env is None else env
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        raise _uri_error(uri, f"not a URI ({exc})") from None
    if parts.scheme != SCHEME:
        raise _uri_error(uri, f"the scheme is {parts.scheme or 'missing'}, not {SCHEME}")
    if parts.query or parts.fragment:
        raise _uri_error(uri, "an ifriend URI takes no query or fragment")
    if parts.netloc:
        raise _uri_error(
            uri,
            f"it names the host {parts.netloc!r}; write ifriend:{parts.netloc}{parts.path} "
            f"for a path relative to the working directory, ifriend:///... for an absolute one",
        )
    path = unquote(parts.path)
    if path:
        return Path(path)
    found = find_config_file(None, env)
    if found is None:
        raise _uri_error(
            uri,
            f"IFRIEND_CONFIG is not set and there is no ifriend.toml in {os.getcwd()}; "
            "name the file in the URI or set IFRIEND_CONFIG",
        )
    return found


def _uri_error(uri: str, problem: str) -> ConfigError:
    return ConfigError(f"bad ifriend service URI {uri!r}: {problem}", expected=URI_FORMS)
