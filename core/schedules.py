"""Periodic tasks: each app declares its own, `ensure_periodic_tasks` writes them to
django-celery-beat's tables.

An app that owns a periodic task declares it on its AppConfig (`periodic_tasks = (Schedule(...),)`),
next to the task, so nothing here names another app's tasks. `ensure_periodic_tasks` is
idempotent: run it after every migrate (`manage.py ensure_schedules`; the embedded runner
runs the same declarations in-process); it creates missing entries and brings existing ones
back to the declared interval.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction


@dataclass(frozen=True)
class Schedule:
    name: str  # unique PeriodicTask name
    task: str  # registered Celery task name
    every_seconds: int
    description: str = ""


def declared_schedules() -> list[Schedule]:
    """Every installed app's schedules (the `periodic_tasks` of its AppConfig), in app order."""
    from django.apps import apps

    return [
        spec for config in apps.get_app_configs() for spec in getattr(config, "periodic_tasks", ())
    ]


def ensure_periodic_tasks(schedules: list[Schedule] | None = None) -> list[str]:
    """Create or update the beat entries; returns the names created or changed."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    changed: list[str] = []
    with transaction.atomic():
        for spec in schedules if schedules is not None else declared_schedules():
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=spec.every_seconds, period=IntervalSchedule.SECONDS
            )
            task, created = PeriodicTask.objects.get_or_create(
                name=spec.name,
                defaults={"task": spec.task, "interval": interval, "description": spec.description},
            )
            if created:
                changed.append(spec.name)
                continue
            if (
                task.task != spec.task
                or task.interval_id != interval.pk
                or task.crontab_id is not None
            ):
                task.task = spec.task
                task.interval = interval
                task.crontab = None
                task.description = spec.description
                task.save()
                changed.append(spec.name)
    return changed
