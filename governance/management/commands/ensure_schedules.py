from __future__ import annotations

from django.core.management.base import BaseCommand

from core.schedules import declared_schedules, ensure_periodic_tasks


class Command(BaseCommand):
    help = "Create or update the periodic tasks (django-celery-beat) Mailwarden needs. Idempotent."

    def handle(self, *args, **options) -> None:
        changed = ensure_periodic_tasks()
        for spec in declared_schedules():
            mark = "updated" if spec.name in changed else "ok"
            self.stdout.write(f"{spec.name:32s} every {spec.every_seconds:>4d}s  {mark}")
