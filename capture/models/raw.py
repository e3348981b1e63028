"""RawMessage: the exact bytes a channel received, written before it acknowledges."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.models import TimeStamped


class Channel(models.TextChoices):
    SMTP = "smtp", "SMTP (BCC/forward address)"
    IMAP = "imap", "IMAP mailbox sync"
    API = "api", "REST API"
    ADDIN = "addin", "Mail-client add-in"
    WEBHOOK = "webhook", "ESP inbound webhook"
    IMPORT = "import", "Import (mbox/Maildir/.eml)"
    PIPE = "pipe", "MTA pipe (capture_mime)"
    DEMO = "demo", "Demo data"


class RawMessageQuerySet(models.QuerySet):
    def stale_pending(self, older_than_seconds: int) -> RawMessageQuerySet:
        cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
        return self.filter(status=RawMessage.Status.PENDING, updated__lt=cutoff)


class RawMessage(TimeStamped):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PROCESSED = "processed", _("Processed")
        REJECTED = "rejected", _("Rejected")
        FAILED = "failed", _("Failed")
        DISCARDED = "discarded", _("Discarded")

    Channel = Channel

    sha256 = models.CharField(max_length=64)  # indexed in Meta (cap_raw_sha256)
    size = models.PositiveBigIntegerField()
    storage_path = models.CharField(
        max_length=300, help_text="Content-addressed path under the raw store."
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    source = models.CharField(
        max_length=300,
        blank=True,
        help_text="Where it came from: mailbox/folder/UID, import file, webhook provider, client.",
    )
    envelope_from = models.CharField(max_length=320, blank=True)
    envelope_to = models.JSONField(default=list, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="raw_messages",
        help_text="Who it was captured for.",
    )
    # The optional references are indexed in Meta where set only (most rows have one of
    # capture_address / mailbox / idempotency_key, none has all): see Meta.indexes.
    capture_address = models.ForeignKey(
        "capture.CaptureAddress",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    mailbox = models.ForeignKey(
        "capture.MailboxConnection",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    options = models.JSONField(
        default=dict,
        blank=True,
        help_text="Add-in choices: records to link, categories, attachments to keep.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    reason_code = models.CharField(max_length=60, blank=True)
    reason_detail = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    traceback = models.TextField(blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    email = models.ForeignKey(
        "capture.EmailMessage",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="raw_messages",
        db_index=False,
    )

    objects = RawMessageQuerySet.as_manager()

    class Meta:
        # Partial indexes: a raw row is inserted and then updated once (processed), and the
        # update cannot be a HOT update (status is indexed), so every index of the table gets
        # an entry per version. Rows where a column is NULL, or (for status) processed rows,
        # which no lookup by that index wants, get none. Lookups by `=`/IN on these columns
        # imply the conditions, so PostgreSQL still uses the indexes (tests/capture/
        # test_indexes.py checks the plans).
        indexes = [
            models.Index(
                fields=["status", "updated"],
                name="cap_raw_status_unsettled",
                # every status but processed: the sweeper's pending and failed rows, the
                # admin's rejected ones (a new status must be added here to be indexed)
                condition=models.Q(status__in=["pending", "rejected", "failed", "discarded"]),
            ),
            models.Index(
                fields=["capture_address"],
                name="cap_raw_capture_address",
                condition=models.Q(capture_address__isnull=False),
            ),
            models.Index(
                fields=["mailbox"],
                name="cap_raw_mailbox",
                condition=models.Q(mailbox__isnull=False),
            ),
            models.Index(
                fields=["email"], name="cap_raw_email", condition=models.Q(email__isnull=False)
            ),
            models.Index(fields=["channel", "received_at"], name="cap_raw_channel_received"),
            # A Meta index, not db_index=True: on PostgreSQL db_index=True on a CharField also
            # builds a varchar_pattern_ops "_like" index, which only serves __startswith.
            models.Index(fields=["sha256"], name="cap_raw_sha256"),
            # The admin's list filters (docs/admin.md "At scale").
            models.Index(fields=["received_at"], name="cap_raw_received"),
            models.Index(
                fields=["reason_code", "-id"],
                name="cap_raw_reason_id",
                condition=~models.Q(reason_code=""),
            ),
        ]
        constraints = [
            # Not unique=True: that indexes every NULL too and adds a "_like" index.
            models.UniqueConstraint(
                fields=["idempotency_key"],
                name="cap_raw_idempotency_unique",
                condition=models.Q(idempotency_key__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"Raw #{self.pk} ({self.channel}, {self.status})"
