"""The Celery app. Tasks are thin wrappers over service functions (docs/architecture.md, "Where code goes")."""

from __future__ import annotations

import gc
import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("mailwarden")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fixup closes every database connection before and after each task unless
# CELERY_DB_REUSE_MAX is set, whatever CONN_MAX_AGE says: each capture batch then paid a new
# PostgreSQL backend (fork, authentication, cold catalog caches: ~20-30 ms a task on 2 cores,
# bench/ingest.py). Leave connection lifetime to Django instead (below): CONN_MAX_AGE and
# CONN_HEALTH_CHECKS apply to tasks as they do to requests.
app.conf.CELERY_DB_REUSE_MAX = 1_000_000_000


@task_prerun.connect
@task_postrun.connect
def _close_old_db_connections(task=None, **kwargs) -> None:
    """What Django does around a request: drop connections that are broken or past CONN_MAX_AGE.

    Not for a task run eagerly (CELERY_TASK_ALWAYS_EAGER, the embedded mode and tests): it
    runs inside its caller's transaction, whose connection must stay open (Django's test
    client disconnects close_old_connections from its request signals for the same reason).
    """
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@worker_process_init.connect
def _freeze_startup_objects(**kwargs) -> None:
    """Move what a worker process holds once started (Django, the apps, the models, the
    pipeline's modules) out of the garbage collector's sight (gc.freeze): a full collection
    then scans only what tasks allocate. A batch of mail makes enough objects to trigger one
    every ~1,000 messages, each scanning the whole heap: 0.13 ms of CPU a message in the
    workers, 0.05 with the startup objects frozen (bench/ingest.py mail, 100k contacts)."""
    import capture.pipeline  # noqa: F401  (import the pipeline before freezing)

    gc.freeze()


app.autodiscover_tasks()
