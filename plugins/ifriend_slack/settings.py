"""`[channels.slack]`: the Slack channel's settings (tokens as `SecretStr`, never printed)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator, model_validator

SLACK_API_URL = "https://slack.com/api/"
MB = 1024 * 1024
_MIME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*)$")

Line = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=150)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OAuthSettings(_Model):
    """`[channels.slack.oauth]`: serve many workspaces from one deployment (HTTP mode).

    Installations are saved in a slack_sdk installation store: `"file"` (a directory)
    or `"sql"` (a SQLAlchemy async URL, e.g. `mysql+asyncmy://...`, `sqlite+aiosqlite://...`).
    """

    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    scopes: list[str] = Field(
        default_factory=lambda: [
            "app_mentions:read",
            "channels:history",
            "groups:history",
            "im:history",
            "mpim:history",
            "chat:write",
            "reactions:write",
            "assistant:write",
            "files:read",
        ]
    )
    user_scopes: list[str] = Field(default_factory=list)
    installation_store: Literal["file", "sql"] = "file"
    directory: str = "./data/slack-installations"
    sql_url: SecretStr | None = None
    table_prefix: str = Field("slack_", pattern=r"^[A-Za-z0-9_]{0,32}$")
    install_path: str = Field("/slack/install", pattern=r"^/")
    redirect_uri_path: str = Field("/slack/oauth_redirect", pattern=r"^/")
    redirect_uri: str | None = None
    state_expiration_seconds: int = Field(600, gt=0)

    @model_validator(mode="after")
    def _store_needs_its_location(self) -> OAuthSettings:
        if self.installation_store == "sql" and self.sql_url is None:
            raise ValueError('installation_store = "sql" needs sql_url (a SQLAlchemy async URL)')
        return self


class SuggestedPrompt(_Model):
    """One prompt offered in the agent view: `title` is shown, `message` is sent when clicked."""

    title: Line
    message: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class SlackSettings(_Model):
    """Validated `[channels.slack]` table."""

    mode: Literal["socket", "http"] = "socket"
    bot_token: SecretStr | None = None
    app_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    host: str = "0.0.0.0"
    port: int = Field(3000, ge=0, le=65535)
    path: str = Field("/slack/events", pattern=r"^/")
    api_url: str = SLACK_API_URL
    # What the user sees while a turn runs: the thread status where Slack allows it, else
    # (and in a DM outside a thread) the reaction.
    working_reaction: str = "eyes"
    assistant_status: bool = True
    status_text: Line = "is thinking..."
    loading_messages: list[Line] = Field(default_factory=list, max_length=10)
    # The agent view: prompts offered on the messages tab and in new threads; thread titles.
    suggested_prompts: list[SuggestedPrompt] = Field(default_factory=list, max_length=4)
    suggested_prompts_title: Line | None = None
    thread_titles: bool = True
    # Replies: streamed natively (chat.startStream) where Slack allows it, else posted and
    # edited at most once per interval; long answers split.
    streaming: bool = True
    max_streamed_chars: int = Field(10_000, ge=1000, le=12_000)
    update_interval_seconds: float = Field(1.0, ge=0)
    max_message_chars: int = Field(3000, ge=200, le=40000)
    apology: str = "Sorry, something went wrong while I was answering. (trace {trace_id})"
    # Thumbs up / down under each answer, recorded against the turn.
    feedback: bool = True
    feedback_reply: Line = "Thanks for the feedback!"
    # Files shared with a message: read up to this size, of these types (type/* allowed).
    max_file_bytes: int = Field(10 * MB, gt=0, le=100 * MB)
    allowed_file_types: list[str] = Field(default_factory=lambda: ["image/*", "application/pdf", "text/*"])
    # Retried / double-delivered events are dropped for this long.
    dedupe: Literal["auto", "redis", "memory"] = "auto"
    dedupe_ttl_seconds: int = Field(3600, gt=0)
    # Web API client.
    rate_limit_retries: int = Field(3, ge=0)
    request_timeout_seconds: float = Field(30.0, gt=0)
    # HTTP mode: requests older (or newer) than this are refused with 401.
    max_request_age_seconds: int = Field(300, gt=0)
    # How long close() waits for turns in flight before cancelling them.
    shutdown_grace_seconds: float = Field(8.0, ge=0)
    socket_ping_interval_seconds: float = Field(10.0, gt=0)
    # slack-bolt's own log level (bolt logs whole request bodies at INFO on a bad signature).
    bolt_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "WARNING"
    oauth: OAuthSettings | None = None

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("api_url is an http(s) URL such as https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    @field_validator("allowed_file_types")
    @classmethod
    def _mime_types(cls, value: list[str]) -> list[str]:
        cleaned = [v.strip().lower() for v in value]
        bad = [v for v in cleaned if not _MIME_PATTERN.match(v)]
        if bad:
            raise ValueError(f"allowed_file_types entries are MIME types such as text/plain or image/*, not {bad}")
        return cleaned

    @field_validator("working_reaction")
    @classmethod
    def _reaction_name(cls, value: str) -> str:
        return value.strip().strip(":")

    @model_validator(mode="after")
    def _credentials_for_mode(self) -> SlackSettings:
        missing = []
        if self.oauth is None and self.bot_token is None:
            missing.append('bot_token (e.g. bot_token = "${SLACK_BOT_TOKEN}")')
        if self.mode == "socket":
            if self.app_token is None:
                missing.append('app_token (socket mode; e.g. app_token = "${SLACK_APP_TOKEN}")')
            if self.oauth is not None:
                raise ValueError(
                    'oauth needs mode = "http" (the install and redirect pages are served over HTTP)'
                )
        elif self.signing_secret is None:
            missing.append('signing_secret (http mode; e.g. signing_secret = "${SLACK_SIGNING_SECRET}")')
        if missing:
            raise ValueError(f"mode = {self.mode!r} needs " + " and ".join(missing))
        return self

    def secrets(self) -> list[str]:
        """Every secret value, so messages can be redacted."""
        values = [self.bot_token, self.app_token, self.signing_secret]
        if self.oauth is not None:
            values += [self.oauth.client_secret, self.oauth.sql_url]
        return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]
