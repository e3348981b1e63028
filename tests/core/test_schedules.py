from __future__ import annotations

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from config.celery import app
from core.schedules import declared_schedules, ensure_periodic_tasks

pytestmark = pytest.mark.django_db


def test_the_audit_sealer_is_scheduled_every_30_seconds_and_registered_with_celery():
    assert "governance.seal_audit" in ensure_periodic_tasks()
    task = PeriodicTask.objects.get(name="governance.seal_audit")
    assert task.task == "governance.seal_audit"
    assert (task.interval.every, task.interval.period) == (30, IntervalSchedule.SECONDS)
    app.loader.import_default_modules()
    assert "governance.seal_audit" in app.tasks


def test_ensure_periodic_tasks_is_idempotent_and_repairs_a_changed_interval():
    ensure_periodic_tasks()
    assert ensure_periodic_tasks() == []
    assert PeriodicTask.objects.filter(name="governance.seal_audit").count() == 1
    task = PeriodicTask.objects.get(name="governance.seal_audit")
    task.interval = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
    task.save()
    assert ensure_periodic_tasks() == ["governance.seal_audit"]  # only the changed one
    assert PeriodicTask.objects.get(name="governance.seal_audit").interval.every == 30


def test_ensure_schedules_command_registers_every_periodic_task_and_its_task_exists(db):
    from django.core.management import call_command
    from django_celery_beat.models import PeriodicTask

    from config.celery import app

    call_command("ensure_schedules")
    app.loader.import_default_modules()
    for spec in declared_schedules():
        assert PeriodicTask.objects.get(name=spec.name).task == spec.task
        assert spec.task in app.tasks, (
            f"{spec.task} is scheduled but no such Celery task is registered"
        )
