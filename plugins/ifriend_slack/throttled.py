"""Logging that a flood of bad requests or a Slack outage cannot turn into a flood of lines."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class ThrottledLog:
    """One line per kind of message at most every `interval` seconds; the next line says
    how many were left out meanwhile."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def log(self, level: int, kind: str, message: str, *args: object) -> bool:
        """Log `message % args` unless a `kind` line went out less than `interval` ago;
        whether it was logged."""
        now = self.clock()
        if now - self._last.get(kind, float("-inf")) < self.interval:
            self._skipped[kind] = self._skipped.get(kind, 0) + 1
            return False
        skipped = self._skipped.pop(kind, 0)
        suffix = f" ({skipped} more like it in the last {self.interval:g} s not logged)" if skipped else ""
        self.logger.log(level, message + suffix, *args)
        self._last[kind] = now
        return True
