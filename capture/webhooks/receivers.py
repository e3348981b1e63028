"""The one receiver of anymail's `inbound` signal (the library's API for inbound mail).

It accepts events only from Mailwarden's own verified views (capture/webhooks/views.py) and
hands them to `capture_inbound_event`; errors propagate so the view answers 5xx and the ESP
retries.
"""

from __future__ import annotations

import logging
from typing import Any

from anymail.signals import inbound
from django.dispatch import receiver

from capture.webhooks.inbound import capture_inbound_event

log = logging.getLogger(__name__)


@receiver(inbound, dispatch_uid="mailwarden.capture.inbound")
def handle_inbound(sender: Any, event: Any, esp_name: str, **kwargs: Any) -> None:
    provider = getattr(sender, "provider", "")
    if not provider:
        # A view mounted outside capture/webhooks/urls.py has no verification guarantee.
        log.warning("inbound event from an unverified %s view ignored", esp_name)
        return
    capture_inbound_event(event, provider=provider)
