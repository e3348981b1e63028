"""The portal's tables: the dashboard summary (one row per refresh) and the policy history
models django-simple-history builds for the tracked policy models (config/portal/history.py)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from config.portal.history import register_policy_history


class DashboardSnapshot(models.Model):
    """The dashboard's figures as the refresh task computed them: the admin index reads the
    newest row (one indexed lookup), never counts the big tables per page view."""

    computed_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    figures = models.JSONField(default=dict)

    class Meta:
        indexes = [models.Index(fields=["-computed_at"], name="portal_snapshot_newest")]
        get_latest_by = "computed_at"

    def __str__(self) -> str:
        return f"dashboard figures of {self.computed_at:%Y-%m-%d %H:%M:%S}"


# Historical models of the policy models (one HistoricalXxx table each, in this app).
register_policy_history()
