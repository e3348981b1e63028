"""Audit review in the admin (governance/admin.py, governance/audit_review.py)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from capture.addresses import get_or_create_capture_address
from capture.models import MailboxConnection
from governance.audit import build_event, record_event, seal_pending_events
from governance.audit_review import safe_cell
from governance.models import AuditEvent
from tests.factories import make_user

pytestmark = pytest.mark.django_db
LIST = "admin:governance_auditevent_changelist"


def listed(client, **params) -> set[str]:
    resp = client.get(reverse(LIST), params)
    assert resp.status_code == 200, resp.content[:500]
    return {e.action for e in resp.context["cl"].result_list}


def test_filters_by_actor_action_channel_object_type_and_dates(admin_client, superuser):
    other = make_user(username="eve")
    record_event("t.one", actor=superuser, channel="admin", object_type="crm.contact", object_id=1)
    record_event("t.two", actor=other, channel="api", object_type="crm.item", object_id=2)
    old = build_event("t.old", actor=other, channel="api", object_type="crm.item", object_id=3)
    old.created = timezone.now() - timedelta(days=40)
    old.save(force_insert=True)
    assert listed(admin_client, actor_user=str(other.pk)) == {"t.two", "t.old"}
    assert listed(admin_client, action="t.one") == {"t.one"}
    assert listed(admin_client, channel="api") == {"t.two", "t.old"}
    assert listed(admin_client, object_type="crm.contact") == {"t.one"}
    since = (timezone.localdate() - timedelta(days=10)).isoformat()
    assert "t.old" not in listed(admin_client, created__date__gte=since)
    until = (timezone.localdate() - timedelta(days=30)).isoformat()
    assert listed(admin_client, created__date__lte=until, channel="api") == {"t.old"}


def test_a_bad_date_is_a_clear_error_not_a_500(admin_client):
    resp = admin_client.get(reverse(LIST), {"created__date__gte": "yesterday"})
    assert resp.status_code in (200, 302)  # the admin's "?e=1" for an invalid lookup


def test_search_by_object(admin_client):
    record_event("t.a", object_type="capture.emailmessage", object_id=42)
    record_event("t.b", object_type="crm.contact", object_id=42)
    assert listed(admin_client, q="capture.emailmessage:42") == {"t.a"}
    assert listed(admin_client, q="42") == {"t.a", "t.b"}


def test_object_page_shows_every_capture_who_where_when(admin_client, capture_mail, superuser):
    alice = make_user(username="alice", email="alice@mailwarden-demo.com")
    address = get_or_create_capture_address(alice)
    mailbox = MailboxConnection.objects.create(
        owner=alice, name="Alice's inbox", host="imap.example", username="alice"
    )
    data = (
        b"From: alice@mailwarden-demo.com\r\nTo: ann@customer.example\r\nSubject: Offer\r\n"
        b"Message-ID: <same-message@customer.example>\r\nDate: Mon, 1 Dec 2026 10:00:00 +0000\r\n\r\nHi\r\n"
    )
    first = capture_mail(channel="smtp", user=alice, capture_address=address, data=data)
    second = capture_mail(channel="imap", user=alice, mailbox=mailbox, data=data, source="INBOX/7")
    assert first.email_id == second.email_id
    url = reverse(
        "admin:governance_auditevent_object", args=["capture.emailmessage", first.email_id]
    )
    html = admin_client.get(url).content.decode()
    captures = html.split('id="captures"', 1)[1].split("</table>", 1)[0]
    assert captures.count("<tr>") == 3  # header + two captures
    assert "SMTP (BCC/forward address)" in captures and address.address in captures
    assert "IMAP mailbox sync" in captures and "Alice&#x27;s inbox" in captures
    assert "alice" in captures and "INBOX/7" in captures


def test_object_page_needs_the_audit_permission(client, capture_mail):
    user = make_user(is_staff=True)
    client.force_login(user)
    resp = client.get(reverse("admin:governance_auditevent_object", args=["crm.contact", "1"]))
    assert resp.status_code == 403


@pytest.mark.parametrize(
    "value,expected",
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("plain", "plain"),
        (None, ""),
        (12, "12"),
    ],
)
def test_safe_cell(value, expected):
    assert safe_cell(value) == expected


def test_csv_export_is_filtered_defused_and_audited(admin_client, superuser):
    record_event("t.export", actor="=cmd|' /C calc'!A0", object_type="crm.contact", object_id=7)
    record_event("t.other", object_type="crm.item", object_id=8)
    resp = admin_client.get(reverse("admin:governance_auditevent_export"), {"action": "t.export"})
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(resp.streaming_content).decode())))
    header, body = rows[0], rows[1:]
    assert [r[header.index("action")] for r in body] == ["t.export"]
    assert body[0][header.index("actor_label")] == "'=cmd|' /C calc'!A0"
    exported = AuditEvent.objects.get(action="audit.exported")
    assert exported.actor_user_id == superuser.pk
    assert exported.detail["filters"] == {"action": "t.export"}
    assert exported.detail["rows"] == 1


def test_verify_from_the_admin_shows_the_result_and_is_audited(admin_client):
    for i in range(3):
        record_event("t.chain", object_id=i)
    seal_pending_events()
    url = reverse("admin:governance_auditevent_verify")
    assert admin_client.get(url).status_code == 200
    html = admin_client.post(url).content.decode()
    assert "The chain is intact" in html and "3 sealed events checked" in html
    assert AuditEvent.objects.get(action="audit.chain_verified").detail["ok"] is True


def test_verify_reports_a_broken_chain(admin_client):
    events = [record_event("t.chain", object_id=i) for i in range(3)]
    seal_pending_events()
    with transaction.atomic(), connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute(
            "UPDATE governance_auditevent SET action = %s WHERE id = %s", ["forged", events[1].pk]
        )
    html = admin_client.post(reverse("admin:governance_auditevent_verify")).content.decode()
    assert "The chain is broken" in html and "event content was altered" in html
    assert AuditEvent.objects.get(action="audit.chain_verified").detail["ok"] is False


def test_changelist_links_export_and_verification(admin_client):
    record_event("t.x", object_type="crm.contact", object_id=5)
    html = admin_client.get(reverse(LIST), {"action": "t.x"}).content.decode()
    assert reverse("admin:governance_auditevent_export") + "?action=t.x" in html
    assert reverse("admin:governance_auditevent_verify") in html
    assert reverse("admin:governance_auditevent_object", args=["crm.contact", "5"]) in html
