"""The Celery app. Tasks are thin wrappers over service functions (STYLE.md)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("mailwarden")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
