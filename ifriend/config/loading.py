"""ifriend.toml + environment -> validated `Settings`, and plugin tables -> their models.

Precedence: environment beats file beats default. The file is `--config PATH`,
else `IFRIEND_CONFIG`, else `ifriend.toml` in the working directory, else none
(built-in defaults). String values may reference the environment as `${VAR}` or
`${VAR:-default}`; `$${` is a literal `${`. A bad value is a `ConfigError` naming
the file or variable, the key, the value (secrets masked) and what was expected.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from ..errors import ConfigError
from .masking import mask_secrets, mask_text
from .models import Settings

M = TypeVar("M", bound=BaseModel)

# Variables the original Redis-over-CloudSQL bot's operators already set.
ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "SESSION_BACKEND": ("session", "backend"),
    "MEMORY_BACKEND": ("memory", "backend"),
    "REDIS_URL": ("backends", "redis", "url"),
    "REDIS_SESSION_TTL": ("backends", "redis", "session_ttl_seconds"),
    "REDIS_MEMORY_TTL_DAYS": ("backends", "redis", "memory_ttl_days"),
    "MYSQL_URL": ("backends", "mysql", "url"),
    "CLOUDSQL_HOST": ("backends", "mysql", "host"),
    "CLOUDSQL_PORT": ("backends", "mysql", "port"),
    "CLOUDSQL_DATABASE": ("backends", "mysql", "database"),
    "CLOUDSQL_USER": ("backends", "mysql", "user"),
    "CLOUDSQL_PASSWORD": ("backends", "mysql", "password"),
    "CLOUDSQL_UNIX_SOCKET": ("backends", "mysql", "unix_socket"),
}
# Any key can also be set as IFRIEND__SECTION__KEY (e.g. IFRIEND__SESSION__BACKEND).
GENERIC_PREFIX = "IFRIEND__"
_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def find_config_file(path: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path | None:
    if path is not None:
        return Path(path)
    if env.get("IFRIEND_CONFIG"):
        return Path(env["IFRIEND_CONFIG"])
    default = Path("ifriend.toml")
    return default if default.is_file() else None


def load_settings(
    path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> Settings:
    """Read, interpolate, override and validate the settings; `ConfigError` if any is bad."""
    env = os.environ if env is None else env
    file = find_config_file(path, env)
    raw: dict[str, Any] = {}
    origins: dict[str, str] = {}
    source = "<defaults>"
    if file is not None:
        source = str(file)
        try:
            raw = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("config file not found", source=source) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file: {exc}", source=source) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}", source=source) from None
        raw = _interpolate(raw, env, source, ())
        origins.update({dotted: source for dotted in _leaf_paths(raw)})
    _apply_environment(raw, origins, env)
    return _validate(raw, source, origins)


def _leaf_paths(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    paths = []
    for k, v in data.items():
        dotted = f"{prefix}{k}"
        paths.extend(_leaf_paths(v, dotted + ".") if isinstance(v, dict) else [dotted])
    return paths


def _interpolate(value: Any, env: Mapping[str, str], source: str, path: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, env, source, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env, source, (*path, str(i))) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(
            f"environment variable {name} is not set",
            source=source,
            key=".".join(path),
            expected=f"{name} to be set, or a default as ${{{name}:-value}}",
        )

    return _REFERENCE.sub(substitute, value)


def _set_path(raw: dict[str, Any], path: tuple[str, ...], value: Any, source: str) -> None:
    node = raw
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(
                "a table was expected", source=source, key=".".join(path), expected="a TOML table"
            )
        node = child
    node[path[-1]] = value


def _apply_environment(raw: dict[str, Any], origins: dict[str, str], env: Mapping[str, str]) -> None:
    for name, path in ENV_OVERRIDES.items():
        if env.get(name, "") != "":
            _set_path(raw, path, env[name], f"env:{name}")
            origins[".".join(path)] = f"env:{name}"
    for name, value in env.items():
        if name.startswith(GENERIC_PREFIX) and len(name) > len(GENERIC_PREFIX):
            path = tuple(part.lower() for part in name[len(GENERIC_PREFIX) :].split("__"))
            if not all(path):
                raise ConfigError(
                    "malformed variable name",
                    source=f"env:{name}",
                    expected="IFRIEND__SECTION__KEY, parts separated by two underscores",
                )
            _set_path(raw, path, value, f"env:{name}")
            origins[".".join(path)] = f"env:{name}"


def _from_environment(origins: Mapping[str, str], dotted: str) -> str | None:
    """The variable that set the value at `dotted`, if the environment did."""
    origin = origins.get(dotted, "")
    return origin[len("env:") :] if origin.startswith("env:") else None


def _env_list(text: str, variable: str, dotted: str) -> list[Any]:
    """A list from the environment: a TOML array (`["a", "b"]`), else comma-separated."""
    if text.strip().startswith("["):
        try:
            return tomllib.loads(f"value = {text}")["value"]
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"not a TOML array: {exc}", source=f"env:{variable}", key=dotted,
                expected='a TOML array such as ["a", "b"], or a comma-separated list',
            ) from None
    return [item.strip() for item in text.split(",") if item.strip()]


def _env_bool(text: str) -> bool | str:
    """`true`/`false` (and 1/0, yes/no, on/off) as a bool; anything else unchanged."""
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    return text


def _wants(annotation: Any, kind: type) -> Any:
    """`annotation` itself, or the member of a union (`X | None`), that is `kind` or a
    subclass of it (`list[str]` counts as `list`); None if there is none."""
    members = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    for candidate in members:
        base = get_origin(candidate) or candidate
        if isinstance(base, type) and issubclass(base, kind):
            return candidate
    return None


def coerce_environment(
    model: type[BaseModel], data: Mapping[str, Any], origins: Mapping[str, str], prefix: str
) -> dict[str, Any]:
    """`data` (the table at `prefix`) with each string the environment set turned into the
    list its field of `model` expects; numbers and booleans are left to pydantic, which
    reads them from text."""
    coerced = dict(data)
    for name, value in data.items():
        field = model.model_fields.get(name)
        if field is None:
            continue
        dotted = f"{prefix}{name}"
        variable = _from_environment(origins, dotted)
        if isinstance(value, str) and variable is not None and _wants(field.annotation, list):
            coerced[name] = _env_list(value, variable, dotted)
        elif isinstance(value, dict) and (sub := _wants(field.annotation, BaseModel)) is not None:
            coerced[name] = coerce_environment(sub, value, origins, dotted + ".")
    return coerced


def _coerce_channel_flags(raw: dict[str, Any], origins: Mapping[str, str]) -> None:
    """`channels.NAME.enabled` from the environment as a bool (the App reads it as is)."""
    for name, table in (raw.get("channels") or {}).items():
        if isinstance(table, dict) and isinstance(table.get("enabled"), str):
            if _from_environment(origins, f"channels.{name}.enabled") is not None:
                table["enabled"] = _env_bool(table["enabled"])


def _validate(raw: dict[str, Any], source: str, origins: dict[str, str]) -> Settings:
    _coerce_channel_flags(raw, origins)
    raw = coerce_environment(Settings, raw, origins, "")
    try:
        return Settings.model_validate({**raw, "source": source, "origins": origins})
    except ValidationError as exc:
        raise _config_error(exc, source, origins) from None


def _config_error(exc: ValidationError, source: str, origins: Mapping[str, str]) -> ConfigError:
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    where = _origin(origins, key, source)
    if first["type"] == "extra_forbidden":
        parent = _model_at(Settings, first["loc"][:-1])
        return ConfigError(
            "unknown setting",
            source=where,
            key=key,
            expected=f"one of: {', '.join(_keys(parent))}" if parent else "a documented key",
        )
    return _invalid(first, key, where)


def _origin(origins: Mapping[str, str], dotted: str, default: str) -> str:
    """Where the value at `dotted` (or, for a table, a value inside it) came from."""
    if dotted in origins:
        return origins[dotted]
    inside = sorted(origin for path, origin in origins.items() if path.startswith(dotted + "."))
    return inside[0] if inside else default


def _keys(model: type[BaseModel]) -> list[str]:
    return [name for name, field in model.model_fields.items() if not field.exclude]


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    for part in loc:
        field = model.model_fields.get(str(part))
        sub = _wants(field.annotation, BaseModel) if field is not None else None
        if sub is None:
            return None
        model = sub
    return model


def _invalid(error: Mapping[str, Any], key: str, where: str) -> ConfigError:
    """A `ConfigError` for one pydantic error, the value and the message masked."""
    value = error.get("input") if error["type"] != "missing" else None
    return ConfigError(
        "invalid setting",
        source=where,
        key=key,
        value=mask_secrets(value, key.rpartition(".")[2]) if not isinstance(value, dict) else None,
        expected=mask_text(error["msg"]),
    )


def parse_section(model: type[M], data: Mapping[str, Any], *, key: str, settings: Settings) -> M:
    """Validate one plugin-owned table (e.g. `[backends.redis]`) against `model`.

    Values the environment set as text become the lists the model expects (numbers and
    booleans are read from text by pydantic)."""
    try:
        return model.model_validate(coerce_environment(model, data, settings.origins, key + "."))
    except ValidationError as exc:
        first = exc.errors()[0]
        sub = ".".join(str(part) for part in first["loc"])
        full = f"{key}.{sub}" if sub else key
        where = settings.origin(*full.split("."))
        if where == "default":
            where = _origin(settings.origins, full, settings.source)
        if first["type"] == "extra_forbidden":
            known = ", ".join(sorted(_keys(model)))
            error = ConfigError(
                "unknown setting", source=where, key=full, expected=f"one of: {known}"
            )
        else:
            error = _invalid(first, full, where)
        raise error from None
