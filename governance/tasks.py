"""Celery tasks of governance: thin wrappers over service functions (docs/architecture.md, "Where code goes")."""

from __future__ import annotations

from celery import shared_task

from governance.audit import seal_pending_events


@shared_task(name="governance.seal_audit", ignore_result=True)
def seal_audit() -> int:
    """Seal pending audit events (beat runs it every 30 s; `manage.py seal_audit` by hand)."""
    return seal_pending_events()
