"""Secrets in settings and in text: which values are secret, masking them in data,
and redacting them from free text such as error messages."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from .models import Settings

# Keys that name a secret, misspelt ones included (`pasword`): masked wherever printed.
_SECRET_KEY = re.compile(r"pass|pa?s+w|pwd|secret|token|credential|(^|_)(api_?|private_?)?keys?$|apikey", re.I)
_SECRET_VALUE_PREFIXES = ("xox", "xapp-")  # Slack tokens, whatever their key
_URL_WORD = re.compile(r"[^\s'\"]+@[^\s'\"]*")
# Secrets shorter than this are masked only as whole words in free text.
MIN_SECRET_SUBSTRING = 8


def looks_secret(key: str, value: Any) -> bool:
    """Whether a setting holds a secret: its key names one (misspelt too), or its value is
    a Slack token."""
    return bool(_SECRET_KEY.search(key)) or (
        isinstance(value, str) and value.startswith(_SECRET_VALUE_PREFIXES)
    )


def _url_credentials(value: str) -> tuple[str, str, str] | None:
    """(everything before the password, the password, everything after it) of a URL-shaped
    string: `scheme://user:PW@host`, a misspelt scheme (`rediss//:PW@host`) or none at all
    (`user:PW@host`); None if it holds no password."""
    head, at, host = value.rpartition("@")
    if not at or any(c.isspace() for c in head):
        return None
    userinfo = head.rpartition("//" if "//" in head else "/")[2]
    user, colon, password = userinfo.partition(":")
    if not colon or not password:
        return None
    return f"{head[: len(head) - len(userinfo)]}{user}:", password, f"@{host}"


def mask_url(value: str) -> str:
    """`value` with the password of a URL-shaped string masked (`scheme://user:***@host`)."""
    parts = _url_credentials(value)
    return value if parts is None else f"{parts[0]}***{parts[2]}"


def mask_value(key: str, value: Any) -> Any:
    """`value` with any secret it carries replaced by `***`."""
    if value is None or value == "":
        return value
    if looks_secret(key, value):
        return "***"
    if isinstance(value, str):
        return mask_url(value)
    return value


def mask_secrets(data: Any, key: str = "") -> Any:
    if isinstance(data, dict):
        return {k: mask_secrets(v, k) for k, v in data.items()}
    if isinstance(data, list):
        return [mask_secrets(v, key) for v in data]
    return mask_value(key, data)


def secret_values(settings: Settings) -> dict[str, str]:
    """Every secret in the settings (passwords, tokens, URL credentials) -> its masked form."""
    found: dict[str, str] = {}

    def visit(key: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                visit(str(k), v)
        elif isinstance(value, list):
            for v in value:
                visit(key, v)
        elif isinstance(value, str) and value:
            masked = mask_value(key, value)
            if masked == value:
                return
            found[value] = str(masked)
            parts = _url_credentials(value) if masked != "***" else None
            if parts is not None:  # a URL: its password alone may be quoted too
                found[parts[1]] = found[unquote(parts[1])] = "***"

    visit("", settings.model_dump(mode="json"))
    return found


def redact(text: str, secrets: Mapping[str, str]) -> str:
    """`text` with each secret replaced by its masked form, longest first. A secret shorter
    than `MIN_SECRET_SUBSTRING` characters is replaced only where it stands alone (not
    inside a word), so that a one-letter secret does not mangle every message."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= MIN_SECRET_SUBSTRING:
            text = text.replace(secret, secrets[secret])
        else:
            alone = rf"(?<![\w.-]){re.escape(secret)}(?![\w.-])"
            text = re.sub(alone, lambda _, masked=secrets[secret]: masked, text)
    return text


def mask_text(text: str) -> str:
    """Free text with the password of every URL-shaped word in it masked."""
    return _URL_WORD.sub(lambda match: mask_url(match.group(0)), text)
