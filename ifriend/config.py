"""ifriend.toml + environment -> typed, validated `Settings`.

Precedence: environment beats file beats default. The file is `--config PATH`,
else `IFRIEND_CONFIG`, else `ifriend.toml` in the working directory, else none
(built-in defaults). String values may reference the environment as `${VAR}` or
`${VAR:-default}`; `$${` is a literal `${`.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import UnionType
from typing import Any, Literal, TypeVar, Union, get_args, get_origin
from urllib.parse import SplitResult, unquote

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

# Keys that name a secret, misspelt ones included (`pasword`): masked wherever printed.
_SECRET_KEY = re.compile(r"pass|pa?s+w|pwd|secret|token|credential|(^|_)(api_?|private_?)?keys?$|apikey", re.I)
_SECRET_VALUE_PREFIXES = ("xox", "xapp-")  # Slack tokens, whatever their key
_URL_WORD = re.compile(r"[^\s'\"]+@[^\s'\"]*")
# Secrets shorter than this are masked only as whole words in free text.
MIN_SECRET_SUBSTRING = 8
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
    # jsonl: the file is rotated past this size; `max_files` files are kept, the current one included.
    max_file_bytes: int = Field(100_000_000, ge=4096)
    max_files: int = Field(5, ge=1, le=1000)
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


def url_port(parts: SplitResult) -> int | None:
    """The port of a split URL (None if it names none); `ValueError` for one that is not a
    number from 1 to 65535 (`urlsplit` accepts `:abc` and `:99999` until asked)."""
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError("the url's port is not a number from 1 to 65535")
    return port


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


def mask_text(text: str) -> str:
    """Free text with the password of every URL-shaped word in it masked."""
    return _URL_WORD.sub(lambda match: mask_url(match.group(0)), text)


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


# --- rendering (`ifriend config`) ------------------------------------------------------------

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
