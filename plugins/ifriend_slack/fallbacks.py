"""Where Slack refused a feature (native streaming, the thread status), remembered for a while.

A workspace without the AI-app features, or an app without the scope, answers every such
call with the same error: after the first refusal the bot goes straight to its fallback
(post-and-update, the reaction) for that workspace and kind of conversation, and tries the
feature again after `ttl_seconds`. Errors about one message or a passing fault are not
remembered: they fall back for that turn only.
"""

from __future__ import annotations

from cachetools import TTLCache

# Errors that say "not for this app or workspace", not "not this time".
REFUSALS = frozenset(
    {
        "access_denied",
        "feature_not_enabled",
        "method_deprecated",
        "method_not_supported_for_channel_type",
        "missing_scope",
        "no_permission",
        "not_allowed",
        "not_allowed_token_type",
        "not_supported",
        "team_access_not_granted",
        "unknown_method",
    }
)


def slack_error(exc: BaseException) -> str | None:
    """The Web API error code an exception carries (`missing_scope`), if it is one."""
    response = getattr(exc, "response", None)
    if response is None:
        return None
    try:
        error = response.get("error")
    except Exception:
        return None
    if isinstance(error, str):
        return error
    return "unknown_method" if getattr(response, "status_code", None) == 404 else None


class Fallbacks:
    """Per (feature, workspace, kind of conversation): whether Slack refused the feature lately."""

    def __init__(self, *, ttl_seconds: float = 3600, max_entries: int = 10_000) -> None:
        self._refused: TTLCache[tuple[str, str, str], str] = TTLCache(maxsize=max_entries, ttl=ttl_seconds)

    def refused(self, feature: str, team: str, kind: str) -> bool:
        return (feature, team, kind) in self._refused

    def note(self, feature: str, team: str, kind: str, exc: BaseException) -> bool:
        """Remember a refusal if `exc` is one; whether it was."""
        error = slack_error(exc)
        if error not in REFUSALS:
            return False
        self._refused[(feature, team, kind)] = error
        return True
