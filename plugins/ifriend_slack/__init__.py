"""Built-in plugin: the `slack` channel (needs `pip install 'ifriend[slack]'`).

Enable it with a `[channels.slack]` table; see docs/slack.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ifriend.plugin_api import PluginError, hookimpl

from .settings import SlackSettings

if TYPE_CHECKING:
    from ifriend.plugin_api import ChannelContext

INSTALL_HINT = "pip install 'ifriend[slack]'"


def require_slack() -> None:
    """Import slack-bolt, slack-sdk and aiohttp, or raise a `PluginError` naming the extra."""
    for module in ("slack_bolt", "slack_sdk", "aiohttp"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise PluginError(
                f"the slack channel needs {module.replace('_', '-')}: {INSTALL_HINT} ({exc})"
            ) from exc


def _slack_channel(context: ChannelContext) -> Any:
    settings = context.parse(SlackSettings)
    require_slack()
    from .channel import SlackChannel

    return SlackChannel(context, settings)


@hookimpl
def register_channels(register: Any) -> None:
    register("slack", _slack_channel)


__all__ = ["INSTALL_HINT", "SlackSettings", "require_slack"]
