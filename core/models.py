"""Abstract model bases shared by every app (no tables of their own)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class TimeStamped(models.Model):
    """`created` and `updated` on every row."""

    created = models.DateTimeField(default=timezone.now, editable=False)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
