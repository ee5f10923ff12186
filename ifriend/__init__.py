"""ifriend: run a Google ADK agent as a chat bot, on a tiered session store."""

from .app import App, BackendContext, Channel, ChannelContext
from .config import Settings, load_settings
from .hookspecs import hookimpl

__all__ = ["App", "BackendContext", "Channel", "ChannelContext", "Settings", "hookimpl", "load_settings"]
__version__ = "0.1.0"  # the only place the version is written (pyproject.toml reads it)
