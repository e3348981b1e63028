"""The portal's Celery tasks: thin doors over config/portal/dashboard.py."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="portal.refresh_dashboard", ignore_result=True)
def refresh_dashboard() -> int:
    """Recompute the dashboard figures (beat runs it every 5 minutes); returns its id."""
    from config.portal.dashboard import refresh_snapshot

    return refresh_snapshot().pk
