"""REST endpoints (see capture/api/urls.py)."""

from __future__ import annotations

from rest_framework.routers import DefaultRouter


def register(router: DefaultRouter) -> None:
    """Add this module's viewsets to the capture router."""
