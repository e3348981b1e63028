"""The worker process set-up of config/celery.py."""

from __future__ import annotations

import gc

from celery.signals import worker_process_init

import config.celery  # noqa: F401  (connects the worker signals)


def test_a_new_worker_process_freezes_its_startup_objects_out_of_the_collectors_scans():
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        worker_process_init.send(sender=None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
