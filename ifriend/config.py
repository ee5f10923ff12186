"""ifriend.toml + environment -> typed, validated `Settings`.

Precedence: environment beats file beats default. The file is `--config PATH`,
else `IFRIEND_CONFIG`, else `ifriend.toml` in the working directory, else none
(built-in defaults). String values may reference the environment as `${VAR}` or
`${VAR:-default}`; `$${` is a literal `${`.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from .errors import ConfigError

M = TypeVar("M", bound=BaseModel)

BACKEND_ALIASES = {"inmemory": "memory", "in_memory": "memory", "cloudsql": "mysql"}

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

_SECRET_KEY = re.compile(r"(password|passwd|secret|token|api_?key|credential)", re.I)
_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _backend_name(value: str) -> str:
    value = value.strip()
    return BACKEND_ALIASES.get(value.lower(), value)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AppSettings(_Section):
    name: str = Field("ifriend", min_length=1)
    agent: str | None = None
    model: str | None = None


class SessionSettings(_Section):
    backend: str = "memory"
    max_id_length: int = Field(128, ge=1, le=255)
    max_event_bytes: int = Field(1_048_576, ge=1024)
    max_state_value_bytes: int = Field(262_144, ge=64)

    @field_validator("backend")
    @classmethod
    def _resolve_alias(cls, value: str) -> str:
        return _backend_name(value)


class MemorySettings(_Section):
    backend: str = "memory"
    max_results: int = Field(10, ge=1, le=1000)
    max_entry_bytes: int = Field(1_048_576, ge=1024)
    # After a turn's reply is sent: never, the session when it ends (`on_close`), or
    # the turn's new events (`every_turn`). See README "Long-term memory".
    auto_add: Literal["off", "on_close", "every_turn"] = "off"
    # `on_close`: a session with no turn for this long counts as ended (0: only at App close).
    idle_close_seconds: float = Field(1800.0, ge=0)

    @field_validator("backend")
    @classmethod
    def _resolve_alias(cls, value: str) -> str:
        return _backend_name(value)


class TelemetrySettings(_Section):
    exporter: Literal["none", "console", "otlp", "jsonl"] = "none"
    endpoint: str | None = None
    protocol: Literal["http/protobuf", "grpc"] = "http/protobuf"
    service_name: str = "ifriend"
    sample_ratio: float = Field(1.0, ge=0.0, le=1.0)
    file: str = "traces.jsonl"
    capture_content: bool = False
    capture_user_ids: bool = False
    # Keys the hash of user ids in telemetry: the same on every replica of a deployment.
    user_id_secret: SecretStr | None = None


class PluginSettings(_Section):
    block: list[str] = Field(default_factory=list)


class Settings(_Section):
    """Every setting of one ifriend deployment."""

    app: AppSettings = AppSettings()
    session: SessionSettings = SessionSettings()
    memory: MemorySettings = MemorySettings()
    backends: dict[str, dict[str, Any]] = Field(default_factory=dict)
    channels: dict[str, dict[str, Any]] = Field(default_factory=dict)
    telemetry: TelemetrySettings = TelemetrySettings()
    plugins: PluginSettings = PluginSettings()
    source: str = Field("<defaults>", exclude=True)
    origins: dict[str, str] = Field(default_factory=dict, exclude=True)

    def origin(self, *path: str) -> str:
        """Where the value at `path` came from: `default`, the file, or `env:NAME`."""
        dotted = ".".join(path)
        while dotted:
            if dotted in self.origins:
                return self.origins[dotted]
            dotted = dotted.rpartition(".")[0]
        return "default"

    def effective(self) -> dict[str, Any]:
        """All settings as plain data, secrets masked."""
        return mask_secrets(self.model_dump(mode="json"))


def mask_value(key: str, value: Any) -> Any:
    """`value` with any secret it carries replaced by `***`."""
    if value is None or value == "":
        return value
    if _SECRET_KEY.search(key):
        return "***"
    if isinstance(value, str) and "://" in value:
        parts = urlsplit(value)
        if parts.password:
            netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
            if parts.port:
                netloc += f":{parts.port}"
            return urlunsplit(parts._replace(netloc=netloc))
    return value


def mask_secrets(data: Any, key: str = "") -> Any:
    if isinstance(data, dict):
        return {k: mask_secrets(v, k) for k, v in data.items()}
    if isinstance(data, list):
        return [mask_secrets(v, key) for v in data]
    return mask_value(key, data)


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
            _set_path(raw, path, value, f"env:{name}")
            origins[".".join(path)] = f"env:{name}"


def _validate(raw: dict[str, Any], source: str, origins: dict[str, str]) -> Settings:
    try:
        return Settings.model_validate({**raw, "source": source, "origins": origins})
    except ValidationError as exc:
        raise _config_error(exc, source, origins) from None


def _config_error(exc: ValidationError, source: str, origins: Mapping[str, str]) -> ConfigError:
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    where = origins.get(key, source)
    value = first.get("input") if first["type"] != "missing" else None
    if first["type"] == "extra_forbidden":
        return ConfigError(
            "unknown setting",
            source=where,
            key=key,
            expected=f"one of the documented keys of [{key.rpartition('.')[0] or key}]",
        )
    return ConfigError(
        "invalid setting",
        source=where,
        key=key,
        value=mask_value(key, value) if not isinstance(value, dict) else None,
        expected=first["msg"],
    )


def parse_section(model: type[M], data: Mapping[str, Any], *, key: str, settings: Settings) -> M:
    """Validate one plugin-owned table (e.g. `[backends.redis]`) against `model`."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        sub = ".".join(str(part) for part in first["loc"])
        full = f"{key}.{sub}" if sub else key
        where = settings.origin(*full.split("."))
        if where == "default":
            where = settings.source
        if first["type"] == "extra_forbidden":
            known = ", ".join(sorted(model.model_fields))
            error = ConfigError(
                "unknown setting", source=where, key=full, expected=f"one of: {known}"
            )
        else:
            value = first.get("input") if first["type"] != "missing" else None
            error = ConfigError(
                "invalid setting",
                source=where,
                key=full,
                value=mask_value(full, value) if not isinstance(value, dict) else None,
                expected=first["msg"],
            )
        raise error from None
