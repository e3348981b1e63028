"""Periodic tasks, registered in django-celery-beat's tables by :func:`ensure_periodic_tasks`.

Idempotent: run it after every migrate (the embedded runner and deployments do); it creates
missing entries and brings existing ones back to the interval declared here. Apps add their
schedules to ``SCHEDULES`` (capture adds its pending sweeper).
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


SCHEDULES: list[Schedule] = [
    Schedule(
        name="governance.seal_audit",
        task="governance.seal_audit",
        every_seconds=30,
        description="Link pending audit events into the hash chain.",
    ),
    Schedule(
        name="capture.sync_due_mailboxes",
        task="capture.sync_due_mailboxes",
        every_seconds=60,
        description="Queue an IMAP sync for every enabled, unpaused mailbox whose next run is due.",
    ),
    Schedule(
        name="capture.sweep_pending",
        task="capture.sweep_pending",
        every_seconds=60,
        description="Re-queue raw messages left pending (lost queue message) and failed ones due for a retry.",
    ),
]


def ensure_periodic_tasks(schedules: list[Schedule] | None = None) -> list[str]:
    """Create or update the beat entries; returns the names created or changed."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    changed: list[str] = []
    with transaction.atomic():
        for spec in schedules if schedules is not None else SCHEDULES:
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
