"""`[channels.console]`: who the console user is, and where its history lives."""

from __future__ import annotations

import getpass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_DIRECTORY = Path("~/.ifriend")


class ConsoleSettings(BaseModel):
    """The `[channels.console]` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: str | None = Field(None, min_length=1)  # default: the OS user
    history_file: str | None = Field(None, min_length=1)  # default: ~/.ifriend/console_history

    def user(self) -> str:
        """The user id the console's turns run as."""
        if self.user_id:
            return self.user_id
        try:
            return getpass.getuser() or "console"
        except (KeyError, OSError):  # no such user in a bare container
            return "console"

    def history_path(self) -> Path:
        """The prompt history file; the remembered session ids live next to it."""
        path = self.history_file or str(DEFAULT_DIRECTORY / "console_history")
        return Path(path).expanduser()

    def state_path(self) -> Path:
        history = self.history_path()
        return history.with_name(history.name + ".state.json")
