"""Retention of captured mail: policies, legal holds, the purge's runs, bin and file outbox,
disposition reviews (docs/retention.md)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from capture.models.messages import Blob, EmailMessage, Thread
from core.models import TimeStamped
from crm.models import Contact, Item, Organization


class RetentionPolicy(TimeStamped):
    """Scope -> trigger + duration -> action. An empty scope criterion means "any"; a policy
    whose every criterion is empty is implicit (the default for all mail), any other is
    explicit. Conflicts resolve as docs/retention.md "Conflicts" says."""

    class Trigger(models.TextChoices):
        RECEIVED = "received", _("Received (the message's date)")
        THREAD_ACTIVITY = "thread_activity", _("Last activity in the thread")
        ITEM_CLOSED = "item_closed", _("The linked item closing")
        CONSENT_WITHDRAWN = "consent_withdrawn", _("The contact's consent withdrawn")

    class Action(models.TextChoices):
        RETAIN = "retain", _("Retain (keep at least this long; no disposal)")
        DELETE = "delete", _("Delete")
        REDACT = "redact", _("Redact (drop bodies and attachments, keep metadata)")
        ANONYMISE = "anonymise", _("Anonymise (participants become pseudonyms)")
        REVIEW = "review", _("Disposition review by a named reviewer")

    LINK_KINDS = ("contact", "organization", *Item.Kind.values)

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    order = models.IntegerField(default=0, help_text="Tie-breaker between equal outcomes.")
    # --- scope (each empty = any) ---
    link_kinds = models.JSONField(
        default=list, blank=True, help_text="Linked record kinds: contact, organization, deal, ..."
    )
    organizations = models.ManyToManyField(Organization, blank=True, related_name="+")
    categories = models.JSONField(default=list, blank=True)
    channels = models.JSONField(default=list, blank=True)
    directions = models.JSONField(default=list, blank=True)
    stored_levels = models.JSONField(default=list, blank=True)
    legal_bases = models.JSONField(
        default=list, blank=True, help_text="A participant contact's current legal basis."
    )
    unlinked_only = models.BooleanField(default=False, help_text="Only mail linked to nothing.")
    # --- when and what ---
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.RECEIVED)
    duration_days = models.PositiveIntegerField()
    action = models.CharField(max_length=10, choices=Action.choices, default=Action.DELETE)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Named reviewer (disposition review).",
    )

    class Meta:
        ordering = ("order", "id")
        verbose_name_plural = "retention policies"

    def __str__(self) -> str:
        return self.name


class LegalHold(TimeStamped):
    """Nothing in scope is purged, redacted, anonymised or erased while the hold is active.
    Scope: the listed contacts, organizations, items and threads (any of them; none listed =
    all mail), narrowed by the date range and the saved filter when given. Holds add up."""

    name = models.CharField(max_length=120)
    reason = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    active = models.BooleanField(default=True)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    contacts = models.ManyToManyField(Contact, blank=True, related_name="+")
    organizations = models.ManyToManyField(Organization, blank=True, related_name="+")
    items = models.ManyToManyField(Item, blank=True, related_name="+")
    threads = models.ManyToManyField(Thread, blank=True, related_name="+")
    date_from = models.DateTimeField(null=True, blank=True)
    date_to = models.DateTimeField(null=True, blank=True)
    saved_filter = models.JSONField(
        default=dict,
        blank=True,
        help_text='{"subject": "...", "address": "...", "category": "..."} (all must match).',
    )

    class Meta:
        indexes = [models.Index(fields=["active"], name="cap_hold_active")]

    def __str__(self) -> str:
        return self.name


class ExpiryJob(models.Model):
    """A bulk recomputation of expires_at, with its progress (shown in the admin)."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    reason = models.CharField(max_length=120)
    scope = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    last_message_id = models.BigIntegerField(default=0)
    created = models.DateTimeField(default=timezone.now)
    finished = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"{self.reason} ({self.done}/{self.total})"


class PurgeRun(models.Model):
    """One run of the purge: counts per policy and action, duration, errors; no personal data."""

    started = models.DateTimeField(default=timezone.now)
    finished = models.DateTimeField(null=True, blank=True)
    dry_run = models.BooleanField(default=False)
    worker = models.CharField(max_length=120, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    held = models.PositiveIntegerField(default=0, help_text="Due messages skipped: on hold.")
    vacuumed = models.PositiveIntegerField(default=0)
    files_deleted = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(default=0)
    batches_ms = models.PositiveIntegerField(
        default=0,
        help_text="Until the last batch committed (the rows); the rest of the duration removed "
        "files through the outbox.",
    )
    errors = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ("-started",)

    def __str__(self) -> str:
        return f"purge run {self.pk} at {self.started:%Y-%m-%d %H:%M}"


class BinnedMessage(models.Model):
    """A deleted message kept restorable for MAILWARDEN_RETENTION_BIN_DAYS: its rows
    serialised, its raw files and blobs still referenced (RawMessage rows, BinnedBlob)."""

    email_id = models.BigIntegerField()
    thread_id = models.BigIntegerField()
    payload = models.JSONField()
    raw_ids = models.JSONField(default=list)
    policy = models.ForeignKey(
        RetentionPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=40)
    binned_at = models.DateTimeField(default=timezone.now)
    vacuum_after = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["vacuum_after"], name="cap_bin_vacuum_after")]

    def __str__(self) -> str:
        return f"binned message {self.email_id}"


class BinnedBlob(models.Model):
    """A blob a binned message's attachments use: PROTECT keeps it (and its file) alive."""

    binned = models.ForeignKey(BinnedMessage, on_delete=models.CASCADE, related_name="blobs")
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return f"blob {self.blob_id} of {self.binned_id}"


class FileDeletion(models.Model):
    """Outbox: a file to remove once its rows are gone, written in the deleting transaction.
    Drained after commit and at the start of every run: a file is removed only when no row
    references its path any more, so a crash anywhere leaves no orphan and no missing file."""

    class Kind(models.TextChoices):
        RAW = "raw", _("Raw message")
        BLOB = "blob", _("Attachment blob")

    kind = models.CharField(max_length=4, choices=Kind.choices)
    path = models.CharField(max_length=300)
    created = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.kind}:{self.path}"


class DispositionReview(TimeStamped):
    """A due message whose policy asks for review: its content stays until the named reviewer
    approves (disposal), extends (a new date) or relabels (another policy), with a
    justification; every decision is audited and kept (proof of disposition)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        APPROVED = "approved", _("Approved (disposed)")
        EXTENDED = "extended", _("Extended")
        RELABELLED = "relabelled", _("Relabelled")

    email = models.ForeignKey(
        EmailMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    email_ref = models.BigIntegerField(help_text="The message's id (kept after disposal).")
    policy = models.ForeignKey(
        RetentionPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    justification = models.TextField(blank=True)
    extended_to = models.DateTimeField(null=True, blank=True)
    new_policy = models.ForeignKey(
        RetentionPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["status", "reviewer"], name="cap_dispreview_status")]

    def __str__(self) -> str:
        return f"review of message {self.email_ref} ({self.status})"


class ExpiringMessage(EmailMessage):
    """Stored messages seen from retention: when each expires and why (a read-only admin)."""

    class Meta:
        proxy = True
        verbose_name = "message expiry"
        verbose_name_plural = "message expiry (why does this expire then?)"
