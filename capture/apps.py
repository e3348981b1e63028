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
        import capture.webhooks.receivers  # noqa: F401
