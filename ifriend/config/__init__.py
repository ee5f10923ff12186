"""ifriend.toml + environment -> typed, validated `Settings`.

Precedence: environment beats file beats default (see `loading`). A bad value fails
at start with the file, the key, the value and what was expected; secrets are never
printed (`masking`). `ifriend config` shows the result (`rendering`).
"""

from .loading import (
    ENV_OVERRIDES,
    GENERIC_PREFIX,
    coerce_environment,
    find_config_file,
    load_settings,
    parse_section,
)
from .masking import looks_secret, mask_secrets, mask_text, mask_url, mask_value, redact, secret_values
from .models import (
    BACKEND_ALIASES,
    AppSettings,
    CompactionSettings,
    MemorySettings,
    PluginSettings,
    SessionSettings,
    Settings,
    TelemetrySettings,
    url_port,
)
from .rendering import format_config, leaf_origins

__all__ = [
    "BACKEND_ALIASES",
    "ENV_OVERRIDES",
    "GENERIC_PREFIX",
    "AppSettings",
    "CompactionSettings",
    "MemorySettings",
    "PluginSettings",
    "SessionSettings",
    "Settings",
    "TelemetrySettings",
    "coerce_environment",
    "find_config_file",
    "format_config",
    "leaf_origins",
    "load_settings",
    "looks_secret",
    "mask_secrets",
    "mask_text",
    "mask_url",
    "mask_value",
    "parse_section",
    "redact",
    "secret_values",
    "url_port",
]
