"""Operating the capture queue: the sweeper that re-queues what was left behind, and the
admin's retry and discard of raw messages (each audited). Doors: the `capture.sweep_pending`
task, `manage.py sweep_captures`, the raw-message admin actions."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from capture import dispatch, storage
from capture.models import RawMessage
from governance.audit import record_event

Status = RawMessage.Status


def retry_backoff(attempts: int) -> timedelta:
    """Exponential backoff with a cap: 1, 2, 4, ... minutes, at most an hour."""
    return timedelta(minutes=min(60, 2 ** max(0, attempts - 1)))


def due_for_processing(older_than_seconds: int | None = None) -> list[int]:
    """Pending rows whose queue message may be lost, and failed rows due for another try."""
    age = (
        settings.MAILWARDEN_SWEEP_PENDING_AFTER_SECONDS
        if older_than_seconds is None
        else older_than_seconds
    )
    now = timezone.now()
    pending = list(RawMessage.objects.stale_pending(age).values_list("pk", flat=True)[:10000])
    failed = [
        pk
        for pk, attempts, updated in RawMessage.objects.filter(
            status=Status.FAILED, attempts__lt=settings.MAILWARDEN_MAX_PROCESS_ATTEMPTS
        ).values_list("pk", "attempts", "updated")[:10000]
        if updated <= now - retry_backoff(attempts)
    ]
    return pending + failed


def sweep_pending(older_than_seconds: int | None = None) -> int:
    """Re-queue what is due (see due_for_processing); returns how many were queued."""
    ids = due_for_processing(older_than_seconds)
    if ids:
        RawMessage.objects.filter(pk__in=ids).update(updated=timezone.now())
        dispatch.enqueue_processing(ids)
    return len(ids)


def retry_raw_messages(raw_ids: list[int], *, actor, release_quarantine: bool = False) -> int:
    """Admin: put rejected/failed messages back to pending and queue them (audited)."""
    retried = []
    with transaction.atomic():
        for raw in RawMessage.objects.select_for_update().filter(
            pk__in=raw_ids, status__in=[Status.REJECTED, Status.FAILED]
        ):
            raw.status, raw.attempts, raw.reason_code, raw.reason_detail, raw.traceback = (
                Status.PENDING,
                0,
                "",
                "",
                "",
            )
            if release_quarantine and raw.options.get("quarantine"):
                raw.options = {**raw.options, "released": True}
            raw.save()
            record_event("raw.retried", actor=actor, obj=raw, channel="admin")
            retried.append(raw.pk)
        if retried:
            transaction.on_commit(lambda: dispatch.enqueue_processing(retried))
    return len(retried)


def discard_raw_messages(raw_ids: list[int], *, actor) -> int:
    """Admin: give up on rejected/failed messages; their bytes are deleted (audited)."""
    count = 0
    paths = []
    with transaction.atomic():
        for raw in RawMessage.objects.select_for_update().filter(
            pk__in=raw_ids, status__in=[Status.REJECTED, Status.FAILED, Status.PENDING]
        ):
            raw.status = Status.DISCARDED
            raw.save(update_fields=["status", "updated"])
            record_event(
                "raw.discarded",
                actor=actor,
                obj=raw,
                channel="admin",
                detail={"reason": raw.reason_code, "size": raw.size},
            )
            paths.append((raw.sha256, raw.storage_path))
            count += 1
    for sha, path in paths:
        if not RawMessage.objects.filter(sha256=sha).exclude(status=Status.DISCARDED).exists():
            storage.delete_raw(path)
    return count
