"""Stored, linked, governed messages: one EmailMessage per normalised Message-ID."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from capture.bodycrypt import SealedJSONField, SealedTextField
from capture.models.raw import Channel
from core.models import TimeStamped
from crm.models import Contact, Item, Organization


class Thread(TimeStamped):
    subject = models.TextField(blank=True)
    subject_norm = models.CharField(max_length=255, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_threads",
        help_text="The first capturer.",
    )
    first_at = models.DateTimeField(null=True, blank=True)
    last_at = models.DateTimeField(null=True, blank=True)
    message_count = models.PositiveIntegerField(default=0)
    private = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["subject_norm", "last_at"], name="cap_thread_subject_last"),
            # The admin's list filters (docs/admin.md "At scale").
            models.Index(fields=["last_at"], name="cap_thread_last_at"),
            models.Index(
                fields=["-id"], name="cap_thread_private_id", condition=models.Q(private=True)
            ),
        ]

    def __str__(self) -> str:
        return self.subject or f"Thread {self.pk}"


class EmailMessage(TimeStamped):
    class Direction(models.TextChoices):
        INBOUND = "inbound", _("Inbound")
        OUTBOUND = "outbound", _("Outbound")
        INTERNAL = "internal", _("Internal")
        UNKNOWN = "unknown", _("Unknown")

    class Kind(models.TextChoices):
        EMAIL = "email", _("Email")
        MEETING = "meeting", _("Meeting")

    class Stored(models.TextChoices):
        FULL = "full", _("Everything")
        SUBJECT = "subject", _("Subject and metadata")
        METADATA = "metadata", _("Metadata only")

    # Unique through Meta.constraints, not unique=True: on PostgreSQL unique=True (and
    # db_index=True) on a CharField also builds a varchar_pattern_ops "_like" index, which
    # only serves LIKE 'prefix%' / __startswith and no code queries these columns that way.
    message_id = models.CharField(max_length=995)
    message_id_synthesised = models.BooleanField(default=False)
    # No index of its own: cap_email_thread_date starts with thread_id.
    thread = models.ForeignKey(
        Thread, on_delete=models.PROTECT, related_name="messages", db_index=False
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.EMAIL)
    subject = models.TextField(blank=True)
    date = models.DateTimeField(db_index=True)
    date_flag = models.CharField(max_length=10, blank=True)
    direction = models.CharField(
        max_length=10, choices=Direction.choices, default=Direction.UNKNOWN
    )
    # Not indexed: no query filters on it with = or a range (the API search is __icontains, the
    # admin's "=from_address" is __iexact, i.e. UPPER(...) = UPPER(...): a btree serves neither).
    from_address = models.CharField(max_length=254, blank=True)
    from_name = models.CharField(max_length=300, blank=True)
    in_reply_to = models.CharField(max_length=995, blank=True)
    references = models.JSONField(default=list, blank=True)
    # Encrypted in the database while MAILWARDEN_ENCRYPT_BODIES is on (capture/bodycrypt.py):
    # never search these columns.
    text_body = SealedTextField(blank=True)
    html_body = SealedTextField(blank=True)
    body_truncated = models.BooleanField(default=False)
    stored = models.CharField(max_length=10, choices=Stored.choices, default=Stored.FULL)
    gate_reasons = models.JSONField(default=list, blank=True)
    private = models.BooleanField(
        default=False,
        help_text="Marked private when captured: visible to the users who captured it alone "
        "(and to the owner of its thread when that thread is private too).",
    )
    auto_generated = models.CharField(max_length=20, blank=True)
    forwarded_flag = models.CharField(
        max_length=30,
        blank=True,
        help_text="Set when a forward's original could not be recovered and the wrapper was logged.",
    )
    size = models.PositiveBigIntegerField(default=0)
    has_attachments = models.BooleanField(default=False)
    defects = models.JSONField(default=list, blank=True)
    headers = SealedJSONField(default=list, blank=True)
    categories = models.JSONField(default=list, blank=True)
    first_raw = models.ForeignKey(
        "capture.RawMessage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Set by retention (capture/retention.py) with the why: the policy, its action and the
    # conflict rule that chose it; the purge finds due rows by the partial index below.
    expires_at = models.DateTimeField(null=True, blank=True)
    expiry_policy = models.ForeignKey(
        "capture.RetentionPolicy",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    expiry_action = models.CharField(max_length=10, blank=True)
    expiry_rule = models.CharField(max_length=40, blank=True)
    # What retention already did: redacted, anonymised, in_review, reviewed, restored.
    disposition = models.CharField(max_length=24, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["thread", "date"], name="cap_email_thread_date"),
            # The admin's list filters, newest first (docs/admin.md "At scale"): a common
            # value is served by the primary key read backwards, a rare one by these.
            models.Index(fields=["direction", "-id"], name="cap_email_direction_id"),
            models.Index(
                fields=["kind", "-id"], name="cap_email_kind_id", condition=~models.Q(kind="email")
            ),
            models.Index(
                fields=["stored", "-id"],
                name="cap_email_stored_id",
                condition=~models.Q(stored="full"),
            ),
            models.Index(
                fields=["-id"],
                name="cap_email_truncated_id",
                condition=models.Q(body_truncated=True),
            ),
            models.Index(
                fields=["auto_generated", "-id"],
                name="cap_email_autogen_id",
                condition=~models.Q(auto_generated=""),
            ),
            models.Index(
                fields=["expires_at", "id"],
                name="cap_email_expires",
                condition=models.Q(expires_at__isnull=False),
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["message_id"], name="cap_email_message_id_unique")
        ]

    def __str__(self) -> str:
        return self.subject or self.message_id


class MessageRef(models.Model):
    """A Message-ID this message points at (In-Reply-To or References): lets a parent that
    arrives late find and absorb the replies that came first."""

    # No index of its own: cap_messageref_unique starts with email_id.
    email = models.ForeignKey(
        EmailMessage, on_delete=models.CASCADE, related_name="refs", db_index=False
    )
    ref = models.CharField(max_length=995)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["email", "ref"], name="cap_messageref_unique")
        ]
        # A Meta index, not db_index=True: no "_like" index on PostgreSQL (see EmailMessage).
        indexes = [models.Index(fields=["ref"], name="cap_messageref_ref")]

    def __str__(self) -> str:
        return self.ref


class Capture(models.Model):
    """One act of capturing a message: who, through which channel, when, from where."""

    email = models.ForeignKey(EmailMessage, on_delete=models.CASCADE, related_name="captures")
    raw = models.OneToOneField(
        "capture.RawMessage", on_delete=models.CASCADE, related_name="capture"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="captures",
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    source = models.CharField(max_length=300, blank=True)
    captured_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.channel} capture of #{self.email_id}"


class Participant(models.Model):
    class Role(models.TextChoices):
        FROM = "from", _("From")
        SENDER = "sender", _("Sender")
        REPLY_TO = "reply_to", _("Reply-To")
        TO = "to", _("To")
        CC = "cc", _("Cc")
        BCC = "bcc", _("Bcc")
        ATTENDEE = "attendee", _("Attendee")

    class Match(models.TextChoices):
        MATCHED = "matched", _("Matched one contact")
        CREATED = "created", _("Contact created")
        UNMATCHED = "unmatched", _("No contact")
        AMBIGUOUS = "ambiguous", _("Several contacts (review)")
        INTERNAL = "internal", _("Internal")
        INVALID = "invalid", _("Invalid address")
        SUPPRESSED = "suppressed", _("Not linked by policy (gate_reason)")

    email = models.ForeignKey(EmailMessage, on_delete=models.CASCADE, related_name="participants")
    role = models.CharField(max_length=10, choices=Role.choices)
    address = models.CharField(max_length=254)
    name = models.CharField(max_length=300, blank=True)
    match = models.CharField(max_length=10, choices=Match.choices, default=Match.UNMATCHED)
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="participations"
    )
    organization = models.ForeignKey(
        Organization,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="participations",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    candidates = models.JSONField(default=list, blank=True, help_text="Contact ids when ambiguous.")
    gate_reason = models.CharField(
        max_length=30,
        blank=True,
        help_text="Why the gate did not link this participant (governance.eligibility codes).",
    )

    class Meta:
        indexes = [
            models.Index(fields=["match", "address"], name="cap_participant_match_addr"),
            # A Meta index, not db_index=True: no "_like" index on PostgreSQL (see EmailMessage).
            models.Index(fields=["address"], name="cap_participant_address"),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.address}"


class Blob(models.Model):
    """Content-addressed file: identical attachments share one stored copy."""

    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    storage_path = models.CharField(max_length=300)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        # Not unique=True: no "_like" index on PostgreSQL (see EmailMessage).
        constraints = [models.UniqueConstraint(fields=["sha256"], name="cap_blob_sha256_unique")]

    def __str__(self) -> str:
        return self.sha256


class Attachment(models.Model):
    class Dropped(models.TextChoices):
        KEPT = "", _("Kept")
        INLINE = "inline", _("Inline part (not kept)")
        TOO_LARGE = "too_large", _("Over the size limit")
        BLOCKED_TYPE = "blocked_type", _("Blocked file type")
        NOT_SELECTED = "not_selected", _("Not selected by the user")
        POLICY = "policy", _("Not stored by policy")

    email = models.ForeignKey(EmailMessage, on_delete=models.CASCADE, related_name="attachments")
    blob = models.ForeignKey(
        Blob, null=True, blank=True, on_delete=models.PROTECT, related_name="attachments"
    )
    filename = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=127)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    inline = models.BooleanField(default=False)
    content_id = models.CharField(max_length=255, blank=True)
    dropped = models.CharField(
        max_length=15, choices=Dropped.choices, blank=True, default=Dropped.KEPT
    )

    def __str__(self) -> str:
        return self.filename or self.sha256[:12]


class Meeting(TimeStamped):
    """A calendar meeting, one per iCalendar UID: its current state, taken from the newest
    REQUEST (higher SEQUENCE, or the same SEQUENCE and a later DTSTAMP) and marked cancelled
    by a CANCEL; the messages that carried it are its `messages` (capture/meetings.py)."""

    class Status(models.TextChoices):
        CONFIRMED = "confirmed", _("Confirmed")
        TENTATIVE = "tentative", _("Tentative")
        CANCELLED = "cancelled", _("Cancelled")

    # Unique through Meta.constraints: no "_like" index on PostgreSQL (see EmailMessage).
    uid = models.CharField(max_length=255)
    method = models.CharField(max_length=20, blank=True, help_text="Of the message that set it.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CONFIRMED)
    summary = models.TextField(blank=True)
    organizer = models.CharField(max_length=254, blank=True)
    attendees = models.JSONField(default=list, blank=True)
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64, blank=True, help_text="TZID of the start.")
    rrule = models.CharField(max_length=500, blank=True)
    rdate = models.JSONField(default=list, blank=True)  # ISO 8601 times
    exdate = models.JSONField(default=list, blank=True)  # ISO 8601 times
    location = models.TextField(blank=True)
    sequence = models.IntegerField(default=0)
    dtstamp = models.DateTimeField(null=True, blank=True)
    timing = models.TextField(
        blank=True,
        help_text="iCalendar text of the series' timing (no summary, location or people).",
    )
    emails = models.ManyToManyField(
        EmailMessage, through="MeetingMessage", related_name="meetings", blank=True
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["uid"], name="cap_meeting_uid_unique")]
        indexes = [models.Index(fields=["start"], name="cap_meeting_start")]

    def __str__(self) -> str:
        return self.summary or self.uid


class MeetingOverride(models.Model):
    """One occurrence of a recurring meeting changed (moved, renamed) or cancelled, by
    RECURRENCE-ID: kept apart from the series so a later series update does not lose it."""

    meeting = models.ForeignKey(
        Meeting, on_delete=models.CASCADE, related_name="overrides", db_index=False
    )
    recurrence_id = models.DateTimeField()
    status = models.CharField(
        max_length=10, choices=Meeting.Status.choices, default=Meeting.Status.CONFIRMED
    )
    summary = models.TextField(blank=True)
    location = models.TextField(blank=True)
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    sequence = models.IntegerField(default=0)
    dtstamp = models.DateTimeField(null=True, blank=True)
    timing = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["meeting", "recurrence_id"], name="cap_meeting_override_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.meeting_id} @ {self.recurrence_id:%Y-%m-%d %H:%M}"


class MeetingMessage(models.Model):
    """A message that carried a meeting: the invite, its updates, a cancel, a reply."""

    meeting = models.ForeignKey(
        Meeting, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    email = models.ForeignKey(
        EmailMessage, on_delete=models.CASCADE, related_name="meeting_messages", db_index=False
    )
    method = models.CharField(max_length=20, blank=True)
    sequence = models.IntegerField(default=0)
    recurrence_id = models.DateTimeField(
        null=True, blank=True, help_text="Set when the message was about one occurrence only."
    )
    applied = models.BooleanField(
        default=True, help_text="False when older than the state already stored."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["meeting", "email"], name="cap_meeting_message_unique")
        ]
        indexes = [models.Index(fields=["email"], name="cap_meeting_message_email")]

    def __str__(self) -> str:
        return f"{self.method or 'message'} #{self.email_id} of meeting {self.meeting_id}"


def one_target_per_thread(prefix: str) -> list[models.BaseConstraint]:
    """A row names exactly one of contact, organization, item, and each at most once per thread
    (ThreadLink, and ThreadUnlink which remembers a removed link)."""
    return [
        models.CheckConstraint(
            condition=(
                models.Q(contact__isnull=False, organization__isnull=True, item__isnull=True)
                | models.Q(contact__isnull=True, organization__isnull=False, item__isnull=True)
                | models.Q(contact__isnull=True, organization__isnull=True, item__isnull=False)
            ),
            name=f"{prefix}_one_target",
        ),
        models.UniqueConstraint(fields=["thread", "contact"], name=f"{prefix}_contact"),
        models.UniqueConstraint(fields=["thread", "organization"], name=f"{prefix}_org"),
        models.UniqueConstraint(fields=["thread", "item"], name=f"{prefix}_item"),
    ]


class ThreadLink(TimeStamped):
    """A thread associated with a CRM record. Every link records its source and who made it."""

    class Source(models.TextChoices):
        PARTICIPANT = "participant", _("Participant match")
        RULE = "rule", _("Link rule")
        MANUAL = "manual", _("Manual")
        INHERITED = "inherited", _("Inherited from thread")
        REFERENCE = "reference", _("Reference found in mail")
        ADDIN = "addin", _("Chosen in the add-in")
        REVIEW = "review", _("Resolved in the review queue")
        BACKFILL = "backfill", _("Backfill of a rule")

    # No index of its own: the three unique constraints below start with thread_id.
    thread = models.ForeignKey(
        Thread, on_delete=models.CASCADE, related_name="links", db_index=False
    )
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.CASCADE, related_name="thread_links"
    )
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="thread_links"
    )
    item = models.ForeignKey(
        Item, null=True, blank=True, on_delete=models.CASCADE, related_name="thread_links"
    )
    source = models.CharField(max_length=12, choices=Source.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    email = models.ForeignKey(
        EmailMessage,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The message whose capture made the link.",
    )
    # The thread's last_at, copied (capture.linking.sync_link_dates): a record's timeline is a
    # range of one of the indexes below, newest first, whatever the record's amount of mail.
    last_at = models.DateTimeField(null=True, blank=True)
    # Why (docs/linking.md): the rule and its strategy, the participant address that matched,
    # the reference found; `detail` holds the rest (contact id, rank, score, review id).
    rule = models.ForeignKey(
        "capture.LinkRule", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    strategy = models.CharField(max_length=12, blank=True)
    matched_address = models.CharField(max_length=254, blank=True)
    reference = models.CharField(max_length=120, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=[field, "last_at", "thread"],
                name=f"cap_link_{short}_last",
                condition=models.Q(**{f"{field}__isnull": False, "last_at__isnull": False}),
            )
            for field, short in (("contact", "contact"), ("organization", "org"), ("item", "item"))
        ]
        constraints = one_target_per_thread("cap_threadlink")

    def __str__(self) -> str:
        return f"thread {self.thread_id} -> {self.contact or self.organization or self.item}"


class ReviewItem(TimeStamped):
    """Something the pipeline would not guess: an ambiguous contact match, an ambiguous link."""

    class Kind(models.TextChoices):
        AMBIGUOUS_CONTACT = "ambiguous_contact", _("Several contacts share an address")
        AMBIGUOUS_ITEM = "ambiguous_item", _("Several open items could be linked")
        REMATCH_BACKFILL = "rematch_backfill", _("Earlier threads can be linked (backfill)")
        QUARANTINE = "quarantine", _("Quarantined by authentication results")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        RESOLVED = "resolved", _("Resolved")
        DISMISSED = "dismissed", _("Dismissed")

    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    email = models.ForeignKey(
        EmailMessage, null=True, blank=True, on_delete=models.CASCADE, related_name="reviews"
    )
    thread = models.ForeignKey(
        Thread, null=True, blank=True, on_delete=models.CASCADE, related_name="reviews"
    )
    participant = models.ForeignKey(
        Participant, null=True, blank=True, on_delete=models.CASCADE, related_name="reviews"
    )
    candidates = models.JSONField(default=list, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "kind"], name="cap_review_status_kind")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.status})"
