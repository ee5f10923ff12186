"""Fault tests: tiered replicas under load while Redis or MariaDB fail (real servers)."""

from __future__ import annotations

from ..tiered.apps import make_app  # noqa: F401 - fixture
