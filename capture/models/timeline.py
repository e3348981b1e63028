"""Admin-defined categories for captured mail, and entries pinned to a CRM record's timeline."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from capture.models.messages import EmailMessage, Thread
from core.models import TimeStamped


class Category(TimeStamped):
    """A category users may put on captured mail (chosen in the add-in, edited afterwards).

    A message keeps its categories as a list of names (EmailMessage.categories); a name is
    accepted only when a Category of that name exists and is active. A deactivated category
    stays on the mail that has it, but cannot be chosen anew.
    """

    name = models.CharField(max_length=100)
    active = models.BooleanField(default=True)
    order = models.IntegerField(default=0, help_text="Lower first in pickers.")

    class Meta:
        ordering = ("order", "name")
        verbose_name_plural = "categories"
        # Not unique=True: no "_like" index on PostgreSQL (see EmailMessage).
        constraints = [models.UniqueConstraint(fields=["name"], name="cap_category_name_unique")]

    def __str__(self) -> str:
        return self.name if self.active else f"{self.name} (inactive)"


class TimelinePin(TimeStamped):
    """A thread (optionally one of its messages) pinned to the top of a record's timeline."""

    class RecordType(models.TextChoices):
        CONTACT = "contact", _("Contact")
        ORGANIZATION = "organization", _("Organization")
        ITEM = "item", _("Item")

    record_type = models.CharField(max_length=12, choices=RecordType.choices)
    record_id = models.BigIntegerField()
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="pins")
    email = models.ForeignKey(
        EmailMessage,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="pins",
        help_text="The message shown for the pinned thread (else its newest).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["record_type", "record_id", "thread"], name="cap_pin_record_thread"
            )
        ]

    def __str__(self) -> str:
        return f"{self.record_type} {self.record_id}: thread {self.thread_id}"
