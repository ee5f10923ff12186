"""The settings' shapes: one frozen pydantic model per core table of `ifriend.toml`, and
`url_port`, which the URL settings of plugins check their ports with."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import SplitResult

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from .masking import mask_secrets

BACKEND_ALIASES = {"inmemory": "memory", "in_memory": "memory", "cloudsql": "mysql"}


def _backend_name(value: str) -> str:
    value = value.strip()
    return BACKEND_ALIASES.get(value.lower(), value)


# A backend's name as configured: surrounding spaces dropped, the old bot's aliases resolved.
BackendName = Annotated[str, AfterValidator(_backend_name)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CompactionSettings(_Section):
    """`[app.compaction]`: ADK's events compaction (docs/compaction.md). Off by default."""

    enabled: bool = False
    # Summarize once `interval` new turns are stored; each summary repeats the last
    # `overlap` turns of the one before.
    interval: int = Field(10, ge=1, le=1000)
    overlap: int = Field(1, ge=0, le=999)
    # Also summarize before a model call whose prompt reaches `prompt_limit` tokens, keeping the
    # last `keep_events` events as they are (None: no such trigger; ADK's `token_threshold`).
    prompt_limit: int | None = Field(None, ge=1)
    keep_events: int = Field(10, ge=0, le=10_000)
    # The summarizer's model; default: the App's (the assistant's, or your root LlmAgent's).
    model: str | None = Field(None, min_length=1)

    @field_validator("overlap")
    @classmethod
    def _overlap_below_interval(cls, overlap: int, info: ValidationInfo) -> int:
        interval = info.data.get("interval")
        if interval is not None and overlap >= interval:
            raise ValueError(
                f"overlap ({overlap}) must be smaller than interval ({interval}): a summary "
                "repeats `overlap` turns of the previous one and adds `interval` new ones"
            )
        return overlap


class AppSettings(_Section):
    name: str = Field("ifriend", min_length=1)
    agent: str | None = None
    model: str | None = None
    # `ifriend run` freezes what is alive after start and raises the collector's thresholds
    # (`ifriend.gc_tuning`): shorter pauses, so a lower p99.
    tune_gc: bool = True
    compaction: CompactionSettings = CompactionSettings()


class SessionSettings(_Section):
    backend: BackendName = "memory"
    max_id_length: int = Field(128, ge=1, le=255)
    max_event_bytes: int = Field(1_048_576, ge=1024)
    max_state_value_bytes: int = Field(262_144, ge=64)


class MemorySettings(_Section):
    backend: BackendName = "memory"
    max_results: int = Field(10, ge=1, le=1000)
    max_entry_bytes: int = Field(1_048_576, ge=1024)
    # After a turn's reply is sent: never, the session when it ends (`on_close`), or
    # the turn's new events (`every_turn`). See docs/memory.md.
    auto_add: Literal["off", "on_close", "every_turn"] = "off"
    # `on_close`: a session with no turn for this long counts as ended (0: only at App close).
    idle_close_seconds: float = Field(1800.0, ge=0)


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
