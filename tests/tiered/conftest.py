"""Tiered-store fixtures: real Redis and MariaDB (`apps.py`)."""

from __future__ import annotations

from .apps import make_app  # noqa: F401 - fixture
