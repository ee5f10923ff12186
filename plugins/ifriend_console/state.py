"""The last session id of each console user, kept in a small JSON file."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)


class LastSessions:
    """`{app/user: session id}` in `path`; a file that cannot be read or written is ignored."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.warning("ignoring console state %s: %s", self.path, exc)
            return {}
        sessions = data.get("sessions") if isinstance(data, dict) else None
        if not isinstance(sessions, dict):
            return {}
        return {k: v for k, v in sessions.items() if isinstance(v, str) and v}

    def get(self, app_name: str, user_id: str) -> str | None:
        return self._read().get(f"{app_name}/{user_id}")

    def remember(self, app_name: str, user_id: str, session_id: str) -> None:
        sessions = self._read()
        sessions[f"{app_name}/{user_id}"] = session_id
        temporary = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps({"sessions": sessions}, indent=2), encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError as exc:
            logger.warning("cannot remember the console session in %s: %s", self.path, exc)
