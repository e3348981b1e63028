"""Operations pages of the admin (docs/admin.md, "Operations"): each action is audited and
says how many rows it acted on; lists that show mail are ordered by mail date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from capture.imap.credentials import set_secret
from capture.models import (
    CaptureAddress,
    EmailMessage,
    LegalHold,
    LinkRule,
    MailboxConnection,
    MailboxFolder,
    RawMessage,
    ReviewItem,
    Thread,
)
from governance.models import AuditEvent
from tests.capture.imap import conftest as imap_fixtures
from tests.capture.linking.helpers import TOM, captured, item, linked_items, rule
from tests.factories import make_capture_address, make_contact, make_user
from tests.portal.conftest import message_bytes

pytestmark = pytest.mark.django_db
ADMIN = "/admin/capture"
# the real Dovecot of the IMAP tests (a throwaway instance on loopback)
dovecot = imap_fixtures.dovecot
make_mailbox = imap_fixtures.make_mailbox
PASSWORD = imap_fixtures.PASSWORD


def act(client, url: str, action: str, ids, **extra) -> list[str]:
    """Run a changelist action on these ids; the messages the admin shows afterwards."""
    response = client.post(
        url, {"action": action, "_selected_action": [str(i) for i in ids], **extra}, follow=True
    )
    assert response.status_code == 200, response.content[:2000]
    return [str(m) for m in get_messages(response.wsgi_request)]


def result_ids(client, url: str) -> list[int]:
    response = client.get(url)
    assert response.status_code == 200
    return [row.pk for row in response.context["cl"].result_list]


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


# ----------------------------------------------------------------- raw message quarantine


def _raws(capture_mail, n: int) -> list[RawMessage]:
    return [capture_mail(data=message_bytes(subject=f"raw {i}")) for i in range(n)]


def test_raw_messages_are_listed_newest_received_first(admin_client, capture_mail):
    raws = _raws(capture_mail, 3)
    base = timezone.now() - timedelta(days=3)
    for offset, raw in zip((2, 0, 1), raws, strict=True):  # received order differs from id order
        RawMessage.objects.filter(pk=raw.pk).update(received_at=base + timedelta(hours=offset))
    assert result_ids(admin_client, f"{ADMIN}/rawmessage/") == [raws[0].pk, raws[2].pk, raws[1].pk]


def test_bulk_retry_counts_only_rejected_or_failed_and_audits_each(admin_client, capture_mail):
    failed, rejected, processed = _raws(capture_mail, 3)
    RawMessage.objects.filter(pk=failed.pk).update(status="failed", reason_code="boom")
    RawMessage.objects.filter(pk=rejected.pk).update(status="rejected", reason_code="too_large")

    shown = act(
        admin_client, f"{ADMIN}/rawmessage/", "retry", [failed.pk, rejected.pk, processed.pk]
    )

    assert shown == ["2 raw messages queued again (only rejected or failed ones are retried)."]
    assert {e.object_id for e in events("raw.retried")} == {str(failed.pk), str(rejected.pk)}
    assert set(RawMessage.objects.filter(status="pending").values_list("pk", flat=True)) == {
        failed.pk,
        rejected.pk,
    }


def test_discard_counts_and_audits(admin_client, capture_mail):
    failed, processed = _raws(capture_mail, 2)
    RawMessage.objects.filter(pk=failed.pk).update(status="failed")

    shown = act(admin_client, f"{ADMIN}/rawmessage/", "discard", [failed.pk, processed.pk])

    assert shown == ["1 raw messages discarded."]
    assert [e.object_id for e in events("raw.discarded")] == [str(failed.pk)]
    assert RawMessage.objects.get(pk=processed.pk).status == "processed"


def test_view_source_shows_the_bytes_as_plain_text_and_is_audited(admin_client, capture_mail):
    raw = capture_mail(data=message_bytes(subject="<script>alert(1)</script>"))
    response = admin_client.get(f"{ADMIN}/rawmessage/{raw.pk}/source/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert "sandbox" in response["Content-Security-Policy"]
    assert b"Subject: <script>alert(1)</script>" in response.content
    assert [e.object_id for e in events("raw.source_viewed")] == [str(raw.pk)]


def test_retry_and_discard_are_not_offered_to_a_plain_staff_user(client, capture_mail):
    from django.contrib.auth.models import Permission

    staff = make_user(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_rawmessage"))
    client.force_login(staff)
    raw = _raws(capture_mail, 1)[0]
    RawMessage.objects.filter(pk=raw.pk).update(status="failed")
    response = client.get(f"{ADMIN}/rawmessage/")
    assert response.status_code == 200
    offered = response.context["cl"].model_admin.get_actions(response.wsgi_request)
    assert not {"retry", "release_quarantine", "discard"} & set(offered)
    act(client, f"{ADMIN}/rawmessage/", "retry", [raw.pk])
    assert RawMessage.objects.get(pk=raw.pk).status == "failed"
    assert events("raw.retried") == []


# ----------------------------------------------------------------- mail lists by mail date


def test_messages_by_date_and_threads_by_last_message(admin_client, capture_mail):
    raws = _raws(capture_mail, 3)
    emails = [EmailMessage.objects.get(pk=r.email_id) for r in raws]
    dates = [datetime(2026, 3, d, tzinfo=UTC) for d in (5, 9, 1)]
    for email, date in zip(emails, dates, strict=True):
        EmailMessage.objects.filter(pk=email.pk).update(date=date)
        Thread.objects.filter(pk=email.thread_id).update(last_at=date)

    assert result_ids(admin_client, f"{ADMIN}/emailmessage/") == [
        emails[1].pk,
        emails[0].pk,
        emails[2].pk,
    ]
    assert result_ids(admin_client, f"{ADMIN}/thread/") == [
        emails[1].thread_id,
        emails[0].thread_id,
        emails[2].thread_id,
    ]


# ----------------------------------------------------------------- review queue


def test_review_queue_resolve_and_dismiss_report_counts_and_audit(admin_client):
    tom = make_contact(emails=(TOM,))
    item(tom)
    top = item(tom)
    rule(LinkRule.Strategy.SINGLE_OPEN)
    e1 = captured(message_id="<ops-a@globex.co.uk>", subject="one")
    e2 = captured(message_id="<ops-b@globex.co.uk>", subject="two")
    e3 = captured(message_id="<ops-c@globex.co.uk>", subject="three")
    reviews = {r.thread_id: r.pk for r in ReviewItem.objects.all()}
    assert len(reviews) == 3

    shown = act(
        admin_client,
        f"{ADMIN}/reviewitem/",
        "resolve_top",
        [reviews[e1.thread_id], reviews[e2.thread_id]],
    )
    assert shown == ["2 review item(s) resolved."]
    assert len(events("review.resolved")) == 2
    assert linked_items(e1) and linked_items(e1) <= {top.pk, top.pk - 1}

    shown = act(admin_client, f"{ADMIN}/reviewitem/", "dismiss", [reviews[e3.thread_id]])
    assert shown == ["1 review item(s) dismissed."]
    assert len(events("review.dismissed")) == 1
    assert linked_items(e3) == set()
    open_ids = result_ids(admin_client, f"{ADMIN}/reviewitem/?status__exact=open")
    assert open_ids == []


# ----------------------------------------------------------------- mailbox connections


def test_test_connection_logs_in_lists_folders_syncs_nothing_and_is_audited(
    admin_client, make_mailbox
):
    mailbox = make_mailbox(name="Sales")
    shown = act(admin_client, f"{ADMIN}/mailboxconnection/", "test_connection", [mailbox.pk])

    assert shown[-1] == "1 of 1 connection(s) OK."
    assert shown[0].startswith("Sales") and "logged in;" in shown[0]
    assert "would sync" in shown[0] and "INBOX" in shown[0]
    (event,) = events("mailbox.connection_tested")
    assert event.detail["status"] == "ok" and event.detail["folders"] >= 1
    assert event.channel == "admin"
    mailbox.refresh_from_db()
    # a test is no sync: no checkpoint, no mail, no status change
    assert mailbox.last_sync_at is None and mailbox.last_error == ""
    assert not MailboxFolder.objects.filter(mailbox=mailbox).exists()
    assert not RawMessage.objects.filter(mailbox=mailbox).exists()


def test_test_connection_reports_a_refused_login_without_the_password(admin_client, make_mailbox):
    mailbox = make_mailbox(name="Wrong")
    set_secret(mailbox, "not-the-pa55word")
    mailbox.save()
    shown = act(admin_client, f"{ADMIN}/mailboxconnection/", "test_connection", [mailbox.pk])

    assert shown[-1] == "0 of 1 connection(s) OK."
    assert shown[0].startswith("Wrong: auth_failed: authentication failed")
    assert "not-the-pa55word" not in " ".join(shown)
    (event,) = events("mailbox.connection_tested")
    assert event.detail["status"] == "auth_failed"
    assert "not-the-pa55word" not in str(event.detail)
    mailbox.refresh_from_db()
    assert mailbox.consecutive_auth_failures == 0 and mailbox.paused_reason == ""


def test_test_connection_reports_an_unreachable_host(admin_client):
    from tests.capture.imap.dovecot import free_port

    mailbox = MailboxConnection(
        owner=make_user(),
        name="Gone",
        host="127.0.0.1",
        port=free_port(),
        security=MailboxConnection.Security.NONE,
        username="x",
    )
    set_secret(mailbox, PASSWORD)
    mailbox.save()
    shown = act(admin_client, f"{ADMIN}/mailboxconnection/", "test_connection", [mailbox.pk])
    assert shown[0].startswith("Gone: unreachable: cannot connect")
    assert "connection refused" in shown[0]
    assert events("mailbox.connection_tested")[0].detail["status"] == "unreachable"


def test_mailbox_list_shows_last_error_and_sync_now_counts(admin_client):
    from tests.factories import make_mailbox as make_plain_mailbox

    ok = make_plain_mailbox(make_user(), name="Fine")
    broken = make_plain_mailbox(make_user(), name="Broken", last_error="timeout: read")
    paused = make_plain_mailbox(make_user(), name="Held", paused_reason="Paused by an admin.")
    page = admin_client.get(f"{ADMIN}/mailboxconnection/?state=error").content.decode()
    assert "timeout: read" in page and "Fine" not in page

    shown = act(
        admin_client, f"{ADMIN}/mailboxconnection/", "sync_now", [ok.pk, broken.pk, paused.pk]
    )
    assert shown == ["Queued 2 mailbox sync(s).", "1 paused or disabled mailbox(es) not queued."]
    assert len(events("mailbox.sync_requested")) == 2


# ----------------------------------------------------------------- capture addresses, holds


def test_capture_addresses_rotate_and_revoke_count_and_audit(admin_client):
    a = make_capture_address(make_user())
    b = make_capture_address(make_user())
    shown = act(admin_client, f"{ADMIN}/captureaddress/", "rotate_addresses", [a.pk])
    assert shown == ["Rotated 1 address(es)."]
    shown = act(admin_client, f"{ADMIN}/captureaddress/", "revoke_addresses", [a.pk, b.pk])
    assert shown == ["Revoked 1 address(es)."]  # a was already revoked by the rotation
    assert CaptureAddress.objects.filter(active=True).count() == 1  # a's replacement
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"capture_address.rotate", "capture_address.revoke"} <= actions, actions


def test_releasing_holds_counts_only_active_ones_and_audits(admin_client, superuser):
    from capture import holds

    first = LegalHold.objects.create(name="Case 1", reason="litigation")
    second = LegalHold.objects.create(name="Case 2", reason="audit")
    holds.release_hold(second, actor=superuser, channel="test")
    shown = act(admin_client, f"{ADMIN}/legalhold/", "release", [first.pk, second.pk])
    assert shown == ["1 hold(s) released."]
    assert not LegalHold.objects.filter(active=True).exists()
    released = AuditEvent.objects.filter(action="retention.hold_released", channel="admin")
    assert released.count() == 1


# ----------------------------------------------------------------- every operations page opens


@pytest.mark.parametrize(
    "url",
    [
        f"{ADMIN}/rawmessage/",
        f"{ADMIN}/reviewitem/",
        f"{ADMIN}/mailboxconnection/",
        f"{ADMIN}/captureaddress/",
        f"{ADMIN}/retentionpolicy/",
        f"{ADMIN}/expiringmessage/",
        f"{ADMIN}/purgerun/",
        f"{ADMIN}/legalhold/",
        f"{ADMIN}/binnedmessage/",
        f"{ADMIN}/datasubjectrequest/",
        "/admin/governance/webhooksubscription/",
        "/admin/governance/webhookdelivery/",
    ],
)
def test_each_operations_page_opens(admin_client, url):
    assert admin_client.get(url).status_code == 200


def test_the_api_tests_a_connection_too(make_mailbox):
    from rest_framework.test import APIClient

    from crm.models import ApiToken

    owner = make_user()
    mailbox = make_mailbox(owner=owner)
    _, key = ApiToken.issue(user=owner, name="t", scopes=["capture:read", "capture:write"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    response = api.post(f"/api/v1/mailboxes/{mailbox.pk}/test-connection/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] is True and body["status"] == "ok" and "INBOX" in body["would_sync"]
    (event,) = events("mailbox.connection_tested")
    assert (event.channel, event.actor_user_id) == ("api", owner.pk)
    stranger = APIClient()
    _, other = ApiToken.issue(user=make_user(), name="t", scopes=["capture:write"])
    stranger.credentials(HTTP_AUTHORIZATION=f"Bearer {other}")
    assert stranger.post(f"/api/v1/mailboxes/{mailbox.pk}/test-connection/").status_code == 404


# ----------------------------------------------------------------- the viewer's image proxy
# The body frame is sandboxed into an opaque origin, so a real browser sends no session
# cookie with its image requests (tests/browser/test_operations.py): the token names the
# user it was issued to, and that user's access decides.

INSIDE = "http://169.254.169.254/latest/meta-data/"  # refused by the proxy: 502 = let through


def _image(client, email_id: int, token: str):
    return client.get(f"{ADMIN}/emailmessage/{email_id}/image/?src={token}")


def test_the_image_token_works_without_a_session_for_the_user_it_was_issued_to(
    client, superuser, capture_mail
):
    from capture.viewer import sign_image

    email_id = capture_mail(user=superuser).email_id
    anonymous = _image(client, email_id, sign_image(email_id, INSIDE, superuser.pk))
    assert anonymous.status_code == 502 and b"private_address" in anonymous.content
    # without a user in the token, or for a user who may not read it, nothing is fetched
    assert _image(client, email_id, sign_image(email_id, INSIDE)).status_code == 404
    outsider = make_user(is_staff=True)
    assert _image(client, email_id, sign_image(email_id, INSIDE, outsider.pk)).status_code == 404
    superuser.is_active = False
    superuser.save()
    assert _image(client, email_id, sign_image(email_id, INSIDE, superuser.pk)).status_code == 404


def test_a_signed_in_user_cannot_use_someone_elses_image_token(client, superuser, capture_mail):
    from capture.viewer import sign_image

    email_id = capture_mail(user=superuser).email_id
    other_admin = make_user(is_staff=True, is_superuser=True)
    client.force_login(other_admin)
    assert _image(client, email_id, sign_image(email_id, INSIDE, superuser.pk)).status_code == 404
    assert _image(client, email_id, sign_image(email_id, INSIDE, other_admin.pk)).status_code == 502


def test_an_image_token_expires(client, superuser, capture_mail, monkeypatch):
    from capture import viewer

    email_id = capture_mail(user=superuser).email_id
    token = viewer.sign_image(email_id, INSIDE, superuser.pk)
    assert _image(client, email_id, token).status_code == 502
    monkeypatch.setattr(viewer, "IMAGE_TOKEN_MAX_AGE", -1)
    assert _image(client, email_id, token).status_code == 404
