"""An API world for walking every route: one record of each kind, all owned by an admin whose
token holds every scope, so each request gets past authentication and reaches the view."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from capture.intake import RawSpec, store_raw_message
from capture.models import (
    Attachment,
    Category,
    DataSubjectRequest,
    LinkRule,
    Meeting,
    MeetingMessage,
    ReviewItem,
    TrackedMessage,
    TrackingEvent,
)
from capture.pipeline import process_raw_message
from crm.models import ApiToken, User
from governance.audit import record_event
from governance.consent import record_consent
from governance.crypto import encrypt_secret
from governance.models import WebhookDelivery, WebhookSubscription
from governance.outbound.signing import generate_secret
from tests.factories import (
    make_capture_address,
    make_contact,
    make_item,
    make_mailbox,
    make_never_log_rule,
    make_organization,
    make_user,
    make_user_address,
)


@dataclass
class ApiWorld:
    client: APIClient
    user: User
    ids: dict[str, int] = field(default_factory=dict)

    def real_id(self, path: str, param: str) -> int:
        """An existing record for a path parameter of `path` (`/api/v1/<collection>/...`)."""
        if param == "attachment_id":
            return self.ids["attachment"]
        parts = path.split("/")
        if parts[3] == "me":  # /api/v1/me/<collection>/{id}/...
            return self.ids[f"me/{parts[4]}"]
        return self.ids[parts[3]]


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    """Walks send hundreds of requests; counts left by other tests must not throttle them."""
    cache.clear()


@pytest.fixture
def api_world(db, mail_fixture) -> ApiWorld:
    user = make_user(role=User.Role.ADMIN, is_staff=True)
    _, key = ApiToken.issue(user=user, name="walker", scopes=[s.value for s in ApiToken.Scope])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    org = make_organization(domains=("acme-widgets.com",))
    contact = make_contact(emails=("jane.doe@acme-widgets.com",), organization=org)
    raw = store_raw_message(
        RawSpec(data=mail_fixture("nested_multipart.eml"), channel="import", user_id=user.pk),
        enqueue=False,
    )
    outcome = process_raw_message(raw.pk)
    assert outcome.status == "processed", outcome
    attachment = Attachment.objects.filter(email_id=outcome.email_id, blob__isnull=False).first()
    assert attachment is not None
    ids = {
        "contacts": contact.pk,
        "organizations": org.pk,
        "items": make_item(contacts=(contact,), organization=org).pk,
        "never-log-rules": make_never_log_rule("noise.example").pk,
        "mailboxes": make_mailbox(user).pk,
        "capture-addresses": make_capture_address(user).pk,
        "captures": raw.pk,
        "emails": outcome.email_id,
        "threads": attachment.email.thread_id,
        "attachment": attachment.pk,
        "audit-events": record_event("walk.started", object_type="test").pk,
        "categories": Category.objects.create(name="Order").pk,
        "meetings": walk_meeting(outcome.email_id).pk,
        "me/addresses": make_user_address(user, "walker-alias@example.org").pk,
        "me/never-log": make_never_log_rule("walker.example", user=user).pk,
        "link-rules": LinkRule.objects.create(kind="deal", strategy="single_open").pk,
        "review-items": ReviewItem.objects.create(
            kind=ReviewItem.Kind.AMBIGUOUS_ITEM, thread_id=attachment.email.thread_id
        ).pk,
        "consents": record_consent(contact.pk, basis="contract", channel="api").pk,
        "data-subject-requests": DataSubjectRequest.objects.create(
            kind="access", address="walker@example.org", requested_by=user
        ).pk,
        "webhooks": (webhook := walk_webhook()).pk,
        "webhook-deliveries": WebhookDelivery.objects.create(
            subscription=webhook, message_id="evt_1", event_type="contact.created", body="{}"
        ).pk,
        "tracking-events": walk_tracking_event(user, attachment.email.message_id).pk,
        **retention_ids(user, outcome.email_id),
    }
    return ApiWorld(client=client, user=user, ids=ids)


def walk_webhook() -> WebhookSubscription:
    """A subscription to a documentation address (192.0.2.0/24): never reachable, and refused
    by the SSRF guard at send time, so a walk that replays or enables it sends nothing."""
    return WebhookSubscription.objects.create(
        name="walk",
        url="https://192.0.2.1/hook",
        event_types=["contact.created"],
        secret_encrypted=encrypt_secret(generate_secret()),
    )


def walk_tracking_event(user: User, message_id: str) -> TrackingEvent:
    """An open of the walker's own message, sent tracked."""
    from django.utils import timezone

    tracked = TrackedMessage.objects.create(
        message_id=message_id,
        sender=user,
        mode="recipient",
        expires_at=timezone.now() + timezone.timedelta(days=1),
    )
    return TrackingEvent.objects.create(tracked=tracked, kind="open")


def walk_meeting(email_id: int) -> Meeting:
    """A meeting carried by the walker's own message, so the walker may see it."""
    meeting = Meeting.objects.create(uid="walk@test", summary="Walk")
    MeetingMessage.objects.create(meeting=meeting, email_id=email_id, method="REQUEST")
    return meeting


def retention_ids(user: User, email_id: int) -> dict[str, int]:
    """One of each retention record (docs/retention.md) for the walker."""
    from capture.models import (
        BinnedMessage,
        DispositionReview,
        ExpiryJob,
        LegalHold,
        PurgeRun,
        RetentionPolicy,
    )

    policy = RetentionPolicy.objects.create(name="walk", duration_days=3650, action="retain")
    return {
        "retention-policies": policy.pk,
        "legal-holds": LegalHold.objects.create(name="walk", reason="walk").pk,
        "purge-runs": PurgeRun.objects.create().pk,
        "retention-bin": BinnedMessage.objects.create(
            email_id=0,
            thread_id=0,
            payload={"message": [{"fields": {}}]},
            vacuum_after=timezone.now(),
        ).pk,
        "disposition-reviews": DispositionReview.objects.create(
            email_id=email_id, email_ref=email_id, policy=policy, reviewer=user
        ).pk,
        "expiry-jobs": ExpiryJob.objects.create(reason="walk").pk,
    }
