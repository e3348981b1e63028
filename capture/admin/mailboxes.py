"""Admin pages (see capture/admin/__init__.py)."""

from __future__ import annotations
