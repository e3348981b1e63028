"""The ways mail comes in: capture addresses (SMTP/BCC) and IMAP mailbox connections."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.models import TimeStamped


def new_capture_token() -> str:
    # 16 bytes from the OS CSPRNG, lowercase base32-ish: unguessable and safe in a local part.
    return secrets.token_hex(12)


class CaptureAddress(TimeStamped):
    """`log+<token>@<capture domain>`: mail sent to it is captured for `user`."""

    class Kind(models.TextChoices):
        PERSONAL = "personal", _("Personal")
        SHARED = "shared", _("Org-wide (shared inbox)")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="capture_addresses"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PERSONAL)
    label = models.CharField(max_length=120, blank=True)
    token = models.CharField(max_length=64, unique=True, default=new_capture_token)
    active = models.BooleanField(default=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "capture addresses"

    def __str__(self) -> str:
        return self.address

    @property
    def local_part(self) -> str:
        return f"log+{self.token}"

    @property
    def address(self) -> str:
        return f"{self.local_part}@{settings.MAILWARDEN_CAPTURE_DOMAIN}"


class SmtpRateEvent(TimeStamped):
    """A capture address hit its rate limit or a mail loop was refused: admins see these."""

    capture_address = models.ForeignKey(
        CaptureAddress, on_delete=models.CASCADE, related_name="rate_events"
    )
    sender = models.CharField(max_length=320)
    reason = models.CharField(max_length=30)
    count = models.PositiveIntegerField(default=1)


class MailboxConnection(TimeStamped):
    """An IMAP mailbox synced on a schedule for its owner."""

    class Auth(models.TextChoices):
        PASSWORD = "password", _("Password")
        XOAUTH2 = "xoauth2", _("OAuth2 access token (XOAUTH2)")

    class Security(models.TextChoices):
        TLS = "tls", _("TLS (IMAPS)")
        STARTTLS = "starttls", _("STARTTLS")
        NONE = "none", _("None (loopback/testing only)")

    class Visibility(models.TextChoices):
        METADATA = "metadata", _("Metadata only")
        SUBJECT = "subject", _("Metadata and subject")
        EVERYTHING = "everything", _("Everything")

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mailboxes"
    )
    name = models.CharField(max_length=120, blank=True)
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField(default=993)
    security = models.CharField(max_length=10, choices=Security.choices, default=Security.TLS)
    username = models.CharField(max_length=255)
    auth = models.CharField(max_length=10, choices=Auth.choices, default=Auth.PASSWORD)
    secret_encrypted = models.TextField(
        blank=True, help_text="Password or access token, encrypted at rest."
    )
    folders = models.JSONField(
        default=list, blank=True, help_text="Folders to sync; empty = INBOX and the \\Sent folder."
    )
    excluded_folders = models.JSONField(default=list, blank=True)
    sync_window_days = models.PositiveIntegerField(default=30)
    interval_minutes = models.PositiveIntegerField(default=5)
    enabled = models.BooleanField(default=True)
    visibility = models.CharField(
        max_length=12, choices=Visibility.choices, default=Visibility.EVERYTHING
    )
    last_sync_at = models.DateTimeField(null=True, blank=True)
    next_sync_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    consecutive_auth_failures = models.PositiveIntegerField(default=0)
    paused_reason = models.CharField(max_length=200, blank=True)
    consecutive_errors = models.PositiveIntegerField(
        default=0, help_text="Failed runs in a row (any cause); sets the retry backoff."
    )
    # The sync lease: one worker at a time per mailbox, on SQLite and PostgreSQL alike.
    lease_token = models.CharField(max_length=40, blank=True, editable=False)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    # The last reconciliation (capture.imap.reconcile): when, and how many UIDs on the server
    # were neither stored nor accounted for (None: never reconciled).
    last_reconciled_at = models.DateTimeField(null=True, blank=True, editable=False)
    reconcile_gap = models.PositiveIntegerField(null=True, blank=True, editable=False)

    def __str__(self) -> str:
        return self.name or f"{self.username}@{self.host}"


class MailboxFolder(TimeStamped):
    """Per-folder checkpoint: advanced only after the fetched raw messages are committed."""

    mailbox = models.ForeignKey(
        MailboxConnection, on_delete=models.CASCADE, related_name="folder_states"
    )
    name = models.CharField(max_length=255)
    uidvalidity = models.BigIntegerField(null=True, blank=True)
    last_uid = models.BigIntegerField(default=0)
    messages_synced = models.PositiveBigIntegerField(default=0)
    skipped = models.PositiveBigIntegerField(default=0)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    skipped_log = models.JSONField(
        default=list,
        blank=True,
        help_text="The last 100 messages not captured (too large, draft): uid, size, reason, time.",
    )
    # The first pass only takes mail on or after this date (SEARCH SINCE) among the UIDs up to
    # window_last_uid; reconciliation counts older mail there as outside the window, not lost.
    window_since = models.DateField(null=True, blank=True)
    window_last_uid = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "name"], name="cap_mailboxfolder_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.mailbox} / {self.name}"


class SkippedUid(models.Model):
    """One UID of a folder that sync deliberately did not store, with the reason: every one is
    kept (skipped_log keeps only the last 100), so reconciliation can account for each UID."""

    class Reason(models.TextChoices):
        TOO_LARGE = "too_large", _("Too large")
        DRAFT = "draft", _("Draft")
        ALREADY_CAPTURED = "already_captured", _("Already captured from this mailbox")

    folder = models.ForeignKey(MailboxFolder, on_delete=models.CASCADE, related_name="skipped_uids")
    uidvalidity = models.BigIntegerField()
    uid = models.BigIntegerField()
    reason = models.CharField(max_length=20, choices=Reason.choices)
    size = models.PositiveBigIntegerField(default=0)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["folder", "uidvalidity", "uid"], name="cap_skippeduid_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.folder} UID {self.uid}: {self.reason}"
