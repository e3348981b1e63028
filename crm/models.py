"""The records email links to, and the people who use Mailwarden.

Users live here (not in governance) because CRM records have owners and the module
dependencies point one way: core <- crm <- governance <- capture (docs/architecture.md).
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.models import TimeStamped


class Team(TimeStamped):
    name = models.CharField(max_length=120, unique=True)

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A member of the sales team. Created from the first migration (Django's advice)."""

    class Role(models.TextChoices):
        ADMIN = "admin", _("Admin")
        COMPLIANCE = "compliance", _("Compliance officer")
        MANAGER = "manager", _("Team manager")
        MEMBER = "member", _("Member")

    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="members"
    )
    language = models.CharField(
        _("language"),
        max_length=10,
        blank=True,
        choices=settings.LANGUAGES,
        help_text=_("The portal's language for this user; empty = follow the browser."),
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    @property
    def is_admin_role(self) -> bool:
        return self.is_superuser or self.role == self.Role.ADMIN

    @property
    def is_compliance(self) -> bool:
        return self.is_superuser or self.role in (self.Role.ADMIN, self.Role.COMPLIANCE)

    def own_addresses(self) -> set[str]:
        """The login e-mail plus connected addresses and aliases, normalised."""
        from crm.addresses import InvalidAddress, normalize_address

        found = set(self.addresses.verified().values_list("address", flat=True))
        if self.email:
            try:
                found.add(normalize_address(self.email))
            except InvalidAddress:
                pass
        return found


class UserAddressQuerySet(models.QuerySet):
    def verified(self) -> UserAddressQuerySet:
        """Only verified addresses count as the user's own."""
        return self.filter(verified_at__isnull=False)


class UserAddress(TimeStamped):
    """An address a user sends from: a connected mailbox address or an alias (HubSpot's rule).

    Only a verified address counts as the user's own. One an admin adds is verified at once
    (the default); one a user adds themself waits for the code mailed to it
    (crm/user_addresses.py)."""

    objects = UserAddressQuerySet.as_manager()

    class Kind(models.TextChoices):
        CONNECTED = "connected", _("Connected address")
        ALIAS = "alias", _("Alias")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="addresses")
    address = models.CharField(max_length=254, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.CONNECTED)
    verified_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    # The pending verification code: a SHA-256 hash, its expiry and the wrong tries so far.
    code_hash = models.CharField(max_length=64, blank=True, editable=False)
    code_expires = models.DateTimeField(null=True, blank=True, editable=False)
    code_attempts = models.PositiveSmallIntegerField(default=0, editable=False)

    class Meta:
        verbose_name_plural = "user addresses"

    def __str__(self) -> str:
        return self.address


class ApiToken(TimeStamped):
    """A bearer token with scopes. Only a hash is stored; the secret is shown once."""

    class Scope(models.TextChoices):
        CAPTURE_WRITE = "capture:write", _("Capture mail")
        CAPTURE_READ = "capture:read", _("Read captured mail")
        CRM_READ = "crm:read", _("Read CRM records")
        CRM_WRITE = "crm:write", _("Write CRM records")
        GOVERNANCE_ADMIN = "governance:admin", _("Administer governance")

    name = models.CharField(max_length=120)
    user = models.ForeignKey(
        User,
        on_delete=models.CASCADE,
        related_name="api_tokens",
        help_text="The user the token acts as (a service token acts as its service user).",
    )
    service = models.CharField(max_length=120, blank=True, help_text="Set for service tokens.")
    prefix = models.CharField(max_length=12, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    last_used = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def audit_actor_label(self) -> str:
        """How the audit log names this token (governance.audit.Actor.of)."""
        return f"token:{self.prefix}:{self.name}"

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def issue(
        cls, *, user: User, name: str, scopes: list[str], service: str = ""
    ) -> tuple[ApiToken, str]:
        key = "mw_" + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user,
            name=name,
            scopes=sorted(set(scopes)),
            service=service,
            prefix=key[:10],
            key_hash=cls.hash_key(key),
        )
        return token, key

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class Organization(TimeStamped):
    class Source(models.TextChoices):
        MANUAL = "manual", _("Manual")
        IMPORT = "import", _("Import")
        CAPTURE = "capture", _("Capture")
        API = "api", _("API")

    name = models.CharField(max_length=200)
    owner = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.MANUAL)
    external_id = models.CharField(max_length=200, null=True, blank=True, unique=True)

    class Meta:
        indexes = [models.Index(Lower("name"), name="crm_org_name_lower")]

    def __str__(self) -> str:
        return self.name


class OrganizationDomain(TimeStamped):
    """A registrable domain (public suffix list) that maps mail to an organization."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(max_length=253, unique=True)

    def __str__(self) -> str:
        return self.domain


class Contact(TimeStamped):
    Source = Organization.Source

    first_name = models.CharField(max_length=120, blank=True)
    last_name = models.CharField(max_length=120, blank=True)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts"
    )
    owner = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.MANUAL)
    marketing = models.BooleanField(
        default=False, help_text="A marketing contact (HubSpot's flag)."
    )
    external_id = models.CharField(max_length=200, null=True, blank=True, unique=True)

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or f"Contact {self.pk}"

    @property
    def primary_email(self) -> str:
        for e in self.emails.all():
            if e.is_primary:
                return e.address
        return ""


class ContactEmail(TimeStamped):
    """A normalised address of a contact. The same address may belong to several contacts."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="emails")
    address = models.CharField(max_length=254, db_index=True)
    is_primary = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contact", "address"], name="crm_contactemail_unique"),
            models.UniqueConstraint(
                fields=["contact"],
                condition=models.Q(is_primary=True),
                name="crm_contactemail_one_primary",
            ),
        ]

    def __str__(self) -> str:
        return self.address


class ItemQuerySet(models.QuerySet):
    def open(self) -> ItemQuerySet:
        return self.filter(status=Item.Status.OPEN)


class Item(TimeStamped):
    """A linkable record: deal, lead, project or ticket (one table; docs/architecture.md says why)."""

    class Kind(models.TextChoices):
        DEAL = "deal", _("Deal")
        LEAD = "lead", _("Lead")
        PROJECT = "project", _("Project")
        TICKET = "ticket", _("Ticket")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        WON = "won", _("Won")
        LOST = "lost", _("Lost")
        CLOSED = "closed", _("Closed")

    kind = models.CharField(max_length=10, choices=Kind.choices)
    title = models.CharField(max_length=300)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    stage = models.CharField(max_length=80, blank=True)
    value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    owner = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.SET_NULL, related_name="items"
    )
    contacts = models.ManyToManyField(Contact, blank=True, related_name="items")
    external_ref = models.CharField(
        max_length=120,
        blank=True,
        db_index=True,
        help_text="A reference that appears in mail (order number, ticket key).",
    )
    external_id = models.CharField(max_length=200, null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)

    objects = ItemQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "external_id"], name="crm_item_kind_external_id"
            ),
        ]
        indexes = [models.Index(fields=["kind", "status"], name="crm_item_kind_status")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.title}"

    def save(self, *args, **kwargs) -> None:
        if self.status != self.Status.OPEN and self.closed_at is None:
            self.closed_at = timezone.now()
        elif self.status == self.Status.OPEN:
            self.closed_at = None
        super().save(*args, **kwargs)
