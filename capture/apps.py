from __future__ import annotations

from django.apps import AppConfig


def _queue_rematch(addresses: list[str]) -> None:
    from capture.tasks import rematch_addresses

    rematch_addresses.delay(addresses)


class CaptureConfig(AppConfig):
    name = "capture"
    verbose_name = "Capture"

    def ready(self) -> None:
        from crm.services import register_address_hook

        # crm never imports capture: it calls the hooks registered here when contacts gain addresses.
        register_address_hook(_queue_rematch)
        # anymail's inbound signal is the library's API for ESP webhooks: one receiver.
        import capture.webhooks.receivers  # noqa: F401
