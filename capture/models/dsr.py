"""Data-subject requests (GDPR Art. 15 access, Art. 17 erasure, Art. 21 objection) and the
keyed hashes of erased addresses, by which a later capture of them is recognised and refused.

See docs/governance.md "Data-subject requests". The request row keeps the address only while
the request runs: an erasure blanks it when done and keeps the keyed hash.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.models import TimeStamped


class DataSubjectRequest(TimeStamped):
    class Kind(models.TextChoices):
        ACCESS = "access", _("Access (Art. 15)")
        ERASURE = "erasure", _("Erasure (Art. 17)")
        OBJECTION = "objection", _("Objection / consent withdrawn (Art. 21)")

    class State(models.TextChoices):
        RECEIVED = "received", _("Received")
        RUNNING = "running", _("Running")
        COMPLETED = "completed", _("Completed")
        FAILED = "failed", _("Failed")

    kind = models.CharField(max_length=10, choices=Kind.choices)
    address = models.CharField(
        max_length=254, blank=True, help_text="Blanked when an erasure completes."
    )
    address_hash = models.CharField(max_length=64, db_index=True, editable=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    note = models.CharField(max_length=500, blank=True, help_text="Reference, how it came in.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.RECEIVED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done.")
    counts = models.JSONField(default=dict, blank=True)
    retained = models.JSONField(
        default=list, blank=True, help_text="What a legal hold kept, with the hold's reason."
    )
    error = models.TextField(blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # access archive: built by the task, downloadable once by the requester before it expires
    archive_path = models.CharField(max_length=300, blank=True, editable=False)
    archive_size = models.PositiveBigIntegerField(default=0, editable=False)
    archive_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    archive_downloaded_at = models.DateTimeField(null=True, blank=True, editable=False)
    password_enc = models.TextField(
        blank=True, editable=False, help_text="Encrypted until the archive is built, then gone."
    )

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["state", "created"], name="cap_dsr_state")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class ErasedAddress(models.Model):
    """A keyed hash (HMAC-SHA256) of an erased address: mail with it is refused from then on."""

    address_hash = models.CharField(max_length=64, unique=True)
    request = models.ForeignKey(
        DataSubjectRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.address_hash[:12]
