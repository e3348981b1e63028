"""Link rules (which items a thread links to) and sticky unlinks (docs/linking.md)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from capture.models.messages import one_target_per_thread
from core.models import TimeStamped
from crm.models import Contact, Item, Organization


class LinkRule(TimeStamped):
    """One ordered rule: for a record kind, how a thread finds the item(s) it links to."""

    class Strategy(models.TextChoices):
        SINGLE_OPEN = "single_open", _("The one open item of the thread's contacts")
        RECENT_OPEN = "recent_open", _("The n most recently active open items")
        REFERENCE = "reference", _("An external reference found in the mail")
        NONE = "none", _("Do not link")

    class Direction(models.TextChoices):
        INBOUND = "inbound", _("Inbound")
        OUTBOUND = "outbound", _("Outbound")
        BOTH = "both", _("Both")

    position = models.PositiveIntegerField(default=100, help_text="Lower runs first.")
    enabled = models.BooleanField(default=True)
    description = models.CharField(max_length=300, blank=True)
    kind = models.CharField(max_length=10, choices=Item.Kind.choices)
    strategy = models.CharField(max_length=12, choices=Strategy.choices)
    recent_count = models.PositiveSmallIntegerField(
        default=5, help_text="recent_open: how many items (n)."
    )
    pattern = models.CharField(
        max_length=300,
        blank=True,
        help_text="reference: a regular expression; its first group (or the whole match) is "
        "the reference looked up in the items' external reference.",
    )
    direction = models.CharField(max_length=10, choices=Direction.choices, default=Direction.BOTH)
    channels = models.JSONField(
        default=list, blank=True, help_text="Capture channels the rule applies to; empty: all."
    )
    skip_auto_generated = models.BooleanField(default=True)

    class Meta:
        ordering = ("position", "id")

    def __str__(self) -> str:
        return self.description or f"{self.get_kind_display()} by {self.strategy}"


class ThreadUnlink(TimeStamped):
    """A link a person removed: no rule, re-match or backfill creates it again (sticky)."""

    thread = models.ForeignKey(
        "capture.Thread", on_delete=models.CASCADE, related_name="unlinks", db_index=False
    )
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    item = models.ForeignKey(
        Item, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = one_target_per_thread("cap_threadunlink")

    def __str__(self) -> str:
        return f"thread {self.thread_id} -/-> {self.contact or self.organization or self.item}"


class UnmatchedReference(models.Model):
    """A reference a `reference` rule found in a message that no open item carries."""

    email = models.ForeignKey(
        "capture.EmailMessage", on_delete=models.CASCADE, related_name="unmatched_references"
    )
    rule = models.ForeignKey(LinkRule, null=True, blank=True, on_delete=models.SET_NULL)
    reference = models.CharField(max_length=120)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["reference"], name="cap_unmatchedref_ref")]

    def __str__(self) -> str:
        return self.reference
