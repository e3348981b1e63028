"""Open and click tracking of mail a user is about to send (capture/tracking/, docs/governance.md
"Tracking").

A `TrackedMessage` is issued before sending, keyed by the mail's Message-ID; when the sent mail is
captured later it is the `EmailMessage` with that Message-ID (`TrackedMessage.message`, a join
on the Message-ID column without a database constraint: the mail may never be captured). Each
pixel load or link click is one `TrackingEvent` row, written by one INSERT on the hot path.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from capture.models.messages import EmailMessage


class TrackedMessage(models.Model):
    """A message issued tracking URLs (POST /api/v1/tracking/)."""

    class Mode(models.TextChoices):
        RECIPIENT = "recipient", _("One recipient (events attributed to their contact)")
        ANONYMOUS = "anonymous", _("Several recipients (events not attributed)")

    # The Message-ID column itself (db_column): `message_id` holds the Message-ID string, and
    # `message` is the captured EmailMessage with it, once there is one.
    message = models.ForeignKey(
        EmailMessage,
        to_field="message_id",
        db_column="message_id",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # cap_tracked_message_unique (no "_like" index)
        related_name="tracking",
    )
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="tracked_messages",
    )
    subject = models.CharField(max_length=300, blank=True)
    mode = models.CharField(max_length=10, choices=Mode.choices)
    recipient_count = models.PositiveIntegerField(default=1)
    links = models.JSONField(default=list, blank=True, help_text="The tracked URLs, in order.")
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message"], name="cap_tracked_message_unique")
        ]
        indexes = [models.Index(fields=["issued_at"], name="cap_tracked_issued")]

    def __str__(self) -> str:
        return self.subject or self.message_id


class TrackedContact(models.Model):
    """A contact of a recipient tracking was issued for: the consent re-check on each event
    looks at these, and a one-recipient message's events are attributed to them."""

    tracked = models.ForeignKey(
        TrackedMessage, on_delete=models.CASCADE, related_name="contacts", db_index=False
    )
    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tracked", "contact"], name="cap_tracked_contact_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tracked_id}: contact {self.contact_id}"


class TrackingEvent(models.Model):
    """One open (pixel load) or click (redirect) of a tracked message. No IP address is kept:
    only whether it looks like a machine (proxy, scanner, too soon) and why."""

    class Kind(models.TextChoices):
        OPEN = "open", _("Open")
        CLICK = "click", _("Click")

    # No database constraint: the one INSERT that writes an event selects its tracked message
    # (capture/tracking/service.py), and a constraint would add a lookup and a row lock on the
    # message per pixel (contention when many open the same mail). Deleting a tracked message
    # deletes its events (Django's cascade).
    tracked = models.ForeignKey(
        TrackedMessage,
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,
        db_constraint=False,
    )
    kind = models.CharField(max_length=5, choices=Kind.choices)
    link = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Index of the clicked URL in the message's links."
    )
    occurred_at = models.DateTimeField(default=timezone.now)
    machine = models.BooleanField(default=False, help_text="Likely not a person.")
    machine_reason = models.CharField(max_length=40, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    class Meta:
        # Lists are newest first by id (events are inserted as they happen): no index on
        # occurred_at alone, one index less to write per pixel.
        indexes = [models.Index(fields=["tracked", "occurred_at"], name="cap_tracking_event_msg")]

    def __str__(self) -> str:
        return f"{self.kind} of {self.tracked_id} at {self.occurred_at:%Y-%m-%d %H:%M:%S}"
