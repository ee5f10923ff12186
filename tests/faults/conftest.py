"""Fault tests: tiered replicas under load while Redis or MariaDB fail (real servers)."""

from __future__ import annotations

from ..tiered.conftest import make_app, mysql_url, redis_url  # noqa: F401  (shared fixtures)
