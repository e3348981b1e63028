from __future__ import annotations

from django.apps import AppConfig

from capture import dispatch
from core.schedules import Schedule


def _queue_rematch(addresses: list[str]) -> None:
    from core.dispatch import send

    send(dispatch.REMATCH_ADDRESSES, addresses)


class CaptureConfig(AppConfig):
    name = "capture"
    verbose_name = "Capture"
    periodic_tasks = (
        Schedule(
            name=dispatch.SYNC_DUE_MAILBOXES,
            task=dispatch.SYNC_DUE_MAILBOXES,
            every_seconds=60,
            description="Queue an IMAP sync for every enabled, unpaused mailbox whose next run is due.",
        ),
        Schedule(
            name=dispatch.SWEEP_PENDING,
            task=dispatch.SWEEP_PENDING,
            every_seconds=60,
            description="Re-queue raw messages left pending (lost queue message) and failed ones due for a retry.",
        ),
        Schedule(
            name=dispatch.EXPIRE_DSR_ARCHIVES,
            task=dispatch.EXPIRE_DSR_ARCHIVES,
            every_seconds=3600,
            description="Delete data-subject access archives nobody downloaded before they expired.",
        ),
        Schedule(
            name=dispatch.EXPIRY_OF_NEW_MESSAGES,
            task=dispatch.EXPIRY_OF_NEW_MESSAGES,
            every_seconds=300,
            description="Give messages stored since the last run their expires_at (docs/retention.md).",
        ),
        Schedule(
            name=dispatch.PURGE_EXPIRED,
            task=dispatch.PURGE_EXPIRED,
            every_seconds=3600,
            description="Purge due messages (holds honoured), vacuum the bin, drain the file outbox.",
        ),
        Schedule(
            name=dispatch.REVIEW_REMINDERS,
            task=dispatch.REVIEW_REMINDERS,
            every_seconds=7 * 24 * 3600,
            description="Mail each reviewer the disposition reviews waiting for them.",
        ),
    )

    def ready(self) -> None:
        from capture.removal import preview_removal
        from capture.tasks import LOCAL_TASKS
        from core.dispatch import register_local
        from crm.services import register_address_hook
        from governance.never_log import register_removal_preview

        # Without a broker (embedded mode, tests) capture's tasks run in-process: registered
        # here, so producers queue by name and never import capture/tasks.py.
        register_local(*LOCAL_TASKS)
        # crm never imports capture: it calls the hooks registered here when contacts gain addresses.
        register_address_hook(_queue_rematch)
        # governance never imports capture: it counts what a never-log rule would remove here.
        register_removal_preview(preview_removal)
        # anymail's inbound signal is the library's API for ESP webhooks: one receiver.
        # No door deletes held mail (the pre_delete guard), and retention hears of consent
        # changes (governance never imports capture).
        import capture.purge
        import capture.webhooks.receivers  # noqa: F401
        from capture.retention import on_consent_changed
        from governance.consent import register_consent_hook

        register_consent_hook(on_consent_changed)
