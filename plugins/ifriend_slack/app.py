"""Building the slack-bolt `AsyncApp` and its Web API client from `[channels.slack]`.

Only imported once slack_bolt is known to be installed (see `require_slack`).
"""

from __future__ import annotations

import logging
import os
import re
import traceback
from typing import Any, Protocol

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from ifriend.plugin_api import ConfigError

from . import webapi
from .feedback import ACTION_ID
from .settings import OAuthSettings, SlackSettings
from .throttled import ThrottledLog

BOLT_LOGGER = "ifriend_slack.bolt"
WEB_LOGGER = "ifriend_slack.web"
log = logging.getLogger("ifriend_slack")


class Listeners(Protocol):
    """What the bolt app hands its requests to (bolt passes arguments by parameter name)."""

    async def on_post(self, body: dict[str, Any], context: Any, request: Any) -> None:
        """An `app_mention` or `message` event (already acked)."""

    async def on_assistant_thread_started(self, event: dict[str, Any], context: Any) -> None:
        """A user opened a new thread in the agent view."""

    async def on_app_home_opened(self, event: dict[str, Any], context: Any) -> None:
        """A user opened one of the app's tabs."""

    async def on_feedback(self, ack: Any, body: dict[str, Any], action: dict[str, Any], context: Any) -> None:
        """A click on a feedback button (to be acked)."""


def bolt_logger(settings: SlackSettings) -> logging.Logger:
    """The logger handed to bolt: bolt copies its level into every logger it makes, so
    bolt neither inherits a verbose root level nor logs request bodies at INFO."""
    logger = logging.getLogger(BOLT_LOGGER)
    logger.setLevel(settings.bolt_log_level)
    return logger


def web_client(
    settings: SlackSettings, *, token: str | None, session: Any = None
) -> AsyncWebClient:
    """A Web API client on `api_url` that retries connection errors and honours 429 Retry-After."""
    logger = logging.getLogger(WEB_LOGGER)
    logger.setLevel(settings.bolt_log_level)  # slack-sdk logs request bodies (message text) at DEBUG
    return AsyncWebClient(
        token=token,
        base_url=settings.api_url,
        timeout=int(settings.request_timeout_seconds),
        session=session,
        logger=logger,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=1),
            AsyncRateLimitErrorRetryHandler(max_retry_count=settings.rate_limit_retries),
        ],
    )


def build_bolt_app(
    settings: SlackSettings,
    *,
    client: AsyncWebClient,
    listeners: Listeners,
    reporter: webapi.Reporter,
) -> AsyncApp:
    """The bolt app: request verification in HTTP mode; listeners for mentions and messages,
    the agent view's events and the feedback buttons; a catch-all that acks every other
    event (an unmatched event would get a 404, which Slack retries); `error_handler`."""
    if settings.oauth is None and os.environ.get("SLACK_CLIENT_ID") and os.environ.get("SLACK_CLIENT_SECRET"):
        raise ConfigError(
            "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set in the environment, which makes "
            "slack-bolt switch to OAuth with a default installation store",
            key="channels.slack.oauth",
            expected="a [channels.slack.oauth] table, or those variables unset",
        )
    http = settings.mode == "http"
    app = AsyncApp(
        # bolt names a per-request logger after the app and configures it like `logger`:
        # a name of our own, so that no other logger's level is changed.
        name=BOLT_LOGGER,
        logger=bolt_logger(settings),
        client=client,
        signing_secret=settings.signing_secret.get_secret_value() if settings.signing_secret else "",
        request_verification_enabled=http,
        url_verification_enabled=http,
        ssl_check_enabled=http,
        oauth_settings=oauth_settings(settings.oauth) if settings.oauth is not None else None,
        process_before_response=False,
    )
    app.event("app_mention")(listeners.on_post)
    app.event("message")(listeners.on_post)
    app.event("assistant_thread_started")(listeners.on_assistant_thread_started)
    app.event("app_home_opened")(listeners.on_app_home_opened)
    app.action(ACTION_ID)(listeners.on_feedback)

    async def ack_only() -> None:
        return None

    app.event(re.compile(r".*"))(ack_only)
    app.error(error_handler(reporter))
    return app


def error_handler(reporter: webapi.Reporter) -> Any:
    """bolt's global error handler: one line per failure (throttled), never a traceback.

    An error while bolt handles a request before acking it is either Slack being away (the
    `auth.test` bolt makes once): the event is acked, counted and logged by `reporter`; or
    a signed request shaped unlike anything Slack sends: 400.
    """
    failures = ThrottledLog(log)

    async def on_error(error: Exception, response: BoltResponse | None) -> BoltResponse | None:
        if webapi.unreachable(error):
            reporter.report("authorize", error)
            acked = BoltResponse(status=200, body="")
        else:
            failures.log(
                logging.WARNING,
                type(error).__name__,
                "Slack request not handled: %s at %s",
                type(error).__name__,
                _where(error),
            )
            acked = BoltResponse(status=400, body="")
        return acked if response is not None else None  # a listener's error: already acked

    return on_error


def _where(error: BaseException) -> str:
    """`file.py:line` where `error` was raised (no message: it may quote the request)."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "an unknown place"
    last = frames[-1]
    return f"{os.path.basename(last.filename)}:{last.lineno}"


def oauth_settings(oauth: OAuthSettings) -> Any:
    """bolt's `AsyncOAuthSettings` with a file or SQL installation store from slack_sdk."""
    from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings

    logger = logging.getLogger("ifriend_slack.oauth")
    secret = oauth.client_secret.get_secret_value()
    if oauth.installation_store == "file":
        from slack_sdk.oauth.installation_store import FileInstallationStore
        from slack_sdk.oauth.state_store import FileOAuthStateStore

        installations: Any = FileInstallationStore(
            base_dir=os.path.join(oauth.directory, "installations"), client_id=oauth.client_id, logger=logger
        )
        states: Any = FileOAuthStateStore(
            expiration_seconds=oauth.state_expiration_seconds,
            base_dir=os.path.join(oauth.directory, "states"),
            client_id=oauth.client_id,
            logger=logger,
        )
    else:
        try:
            from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
            from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
            from sqlalchemy.ext.asyncio import create_async_engine
        except ImportError as exc:
            raise ConfigError(
                "the SQL installation store needs SQLAlchemy with asyncio",
                key="channels.slack.oauth.installation_store",
                value="sql",
                expected=f"pip install 'sqlalchemy[asyncio]' and a driver ({exc.name} is missing)",
            ) from None
        assert oauth.sql_url is not None
        try:
            engine = create_async_engine(oauth.sql_url.get_secret_value(), pool_pre_ping=True)
        except Exception as exc:
            raise ConfigError(
                f"cannot use sql_url ({type(exc).__name__})",
                key="channels.slack.oauth.sql_url",
                expected="a SQLAlchemy async URL, e.g. mysql+asyncmy://user:pw@host/db",
            ) from None
        prefix = oauth.table_prefix
        installations = AsyncSQLAlchemyInstallationStore(
            client_id=oauth.client_id,
            engine=engine,
            bots_table_name=f"{prefix}bots",
            installations_table_name=f"{prefix}installations",
            logger=logger,
        )
        states = AsyncSQLAlchemyOAuthStateStore(
            expiration_seconds=oauth.state_expiration_seconds,
            engine=engine,
            table_name=f"{prefix}oauth_states",
            logger=logger,
        )
    return AsyncOAuthSettings(
        client_id=oauth.client_id,
        client_secret=secret,
        scopes=oauth.scopes,
        user_scopes=oauth.user_scopes,
        redirect_uri=oauth.redirect_uri,
        install_path=oauth.install_path,
        redirect_uri_path=oauth.redirect_uri_path,
        installation_store=installations,
        state_store=states,
        state_expiration_seconds=oauth.state_expiration_seconds,
        logger=logger,
    )


async def prepare_oauth(app: AsyncApp) -> None:
    """Create the SQL installation store's tables (no-op for the file store)."""
    flow = app.oauth_flow
    if flow is None:
        return
    for store in (flow.settings.installation_store, flow.settings.state_store):
        create = getattr(store, "create_tables", None)
        if create is not None:
            await create()


async def close_oauth(app: AsyncApp) -> None:
    flow = app.oauth_flow
    if flow is None:
        return
    engine = getattr(flow.settings.installation_store, "engine", None)
    if engine is not None:
        await engine.dispose()
