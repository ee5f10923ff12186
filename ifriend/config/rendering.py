"""`ifriend config`: the effective settings as commented TOML, and where each came from."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .models import Settings

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def leaf_origins(settings: Settings) -> dict[str, str]:
    """Dotted path of every leaf of the effective settings -> where it came from."""
    return {
        ".".join(path): settings.origin(*path) for path, _ in _leaves(settings.effective(), ())
    }


def _leaves(data: Mapping[str, Any], prefix: tuple[str, ...]) -> Iterable[tuple[tuple[str, ...], Any]]:
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def format_config(settings: Settings) -> str:
    """The effective settings as TOML, each value commented with its origin."""
    rows: list[tuple[str, str | None]] = [(f"# settings file: {settings.source}", None)]
    _toml_rows(settings.effective(), (), settings, rows)
    width = max((len(text) for text, comment in rows if comment is not None), default=0)
    return "\n".join(
        text if comment is None else f"{text.ljust(width)}  # {comment}" for text, comment in rows
    )


def _toml_rows(
    table: Mapping[str, Any],
    path: tuple[str, ...],
    settings: Settings,
    rows: list[tuple[str, str | None]],
) -> None:
    scalars = [(k, v) for k, v in table.items() if not isinstance(v, Mapping)]
    subtables = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
    if path and (scalars or not subtables):
        rows.append(("", None))
        rows.append((f"[{'.'.join(_toml_key(p) for p in path)}]", None))
    for key, value in scalars:
        origin = settings.origin(*path, key)
        if value is None:
            rows.append((f"# {_toml_key(key)} is not set", origin))
        else:
            rows.append((f"{_toml_key(key)} = {_toml_value(value)}", origin))
    for key, value in subtables:
        _toml_rows(value, (*path, key), settings, rows)


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{" + inner + "}"
    if value is None:
        return '""'
    return json.dumps(str(value), ensure_ascii=False)
