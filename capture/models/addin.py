"""The add-in's sign-in: a device-code grant (RFC 8628 style) that ends in a scoped API token."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from core.models import TimeStamped


class AddinDeviceGrant(TimeStamped):
    """One sign-in attempt of the Outlook add-in.

    The pane holds the secret device code (only its SHA-256 is stored) and shows the short
    user code; a signed-in user approves the user code on /addin/activate/; the pane's next
    poll receives a freshly issued API token (its secret is never stored either)."""

    device_code_hash = models.CharField(max_length=64, unique=True, editable=False)
    user_code = models.CharField(max_length=8, db_index=True, editable=False)
    expires_at = models.DateTimeField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="addin_grants",
        help_text="Who approved the code.",
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    denied_at = models.DateTimeField(null=True, blank=True)
    consumed_at = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    token = models.ForeignKey(
        "crm.ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    client = models.CharField(max_length=200, blank=True, help_text="The pane's User-Agent.")

    def __str__(self) -> str:
        return f"add-in sign-in {self.user_code[:4]}-{self.user_code[4:]}"
