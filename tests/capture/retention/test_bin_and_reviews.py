"""The bin (restore by API and admin, audited; vacuum), late-parent references kept
consistent, disposition reviews (approve / extend / relabel, audited, weekly reminder),
purge runs without personal data, dry runs, the audit log's own retention."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail as django_mail
from django.core.management import call_command

from capture.models import BinnedMessage, DispositionReview, EmailMessage, MessageRef, PurgeRun
from capture.purge import purge_expired
from capture.retention import recompute
from capture.reviews import send_review_reminders
from governance.audit import prune_audit_log, record_event, seal_pending_events, verify_chain
from governance.models import AuditAnchor, AuditEvent
from tests.capture.retention.helpers import capture, mail, policy

pytestmark = pytest.mark.django_db


def test_restore_from_the_bin_through_the_api_and_the_admin(
    api_client_admin, admin_client_logged_in
):
    first = capture(mail("r1@x.example", attachment=b"%PDF-1.4 one"))
    second = capture(mail("r2@x.example", subject="Two"))
    policy(duration_days=30)
    recompute()
    purge_expired()
    assert not EmailMessage.objects.exists()
    entries = {e.email_id: e for e in BinnedMessage.objects.all()}
    r = api_client_admin.post(f"/api/v1/retention-bin/{entries[first.pk].pk}/restore/")
    assert r.status_code == 200 and r.json() == {"email": first.pk}
    restored = EmailMessage.objects.get(pk=first.pk)
    assert restored.thread.message_count == 1 and restored.attachments.get().blob_id
    r = api_client_admin.post(f"/api/v1/retention-bin/{entries[first.pk].pk}/restore/")
    assert r.status_code == 404
    r = admin_client_logged_in.post(
        "/admin/capture/binnedmessage/",
        {"action": "restore", "_selected_action": [entries[second.pk].pk]},
        follow=True,
    )
    assert r.status_code == 200 and EmailMessage.objects.filter(pk=second.pk).exists()
    assert AuditEvent.objects.filter(action="retention.restored").count() == 2


def test_a_deleted_parent_leaves_its_replies_a_reference_to_rejoin(settings):
    settings.MAILWARDEN_RETENTION_BIN_DAYS = 0
    parent = capture(
        mail("parent@x.example", subject="Offer", date=datetime(2020, 1, 1, tzinfo=UTC))
    )
    reply = capture(
        mail("reply@x.example", subject="Re: Offer", in_reply_to="parent@x.example",
             date=datetime.now(UTC))
    )  # fmt: skip
    assert reply.thread_id == parent.thread_id
    assert not MessageRef.objects.filter(email=reply).exists()  # the parent is stored
    policy(duration_days=30)
    recompute()
    # the reply is recent: only the parent is due; retention keeps no thread here
    purge_expired()
    assert not EmailMessage.objects.filter(pk=parent.pk).exists()
    assert list(MessageRef.objects.filter(email=reply).values_list("ref", flat=True)) == [
        "parent@x.example"
    ]
    # a re-capture of the parent rejoins the reply's thread
    again = capture(
        mail("parent@x.example", subject="Offer", date=datetime(2020, 1, 1, tzinfo=UTC))
    )
    reply.refresh_from_db()
    assert again.thread_id == reply.thread_id


def test_disposition_review_approve_extend_relabel_and_reminders(admin_user, api_client_admin):
    a = capture(mail("d1@x.example"))
    b = capture(mail("d2@x.example", subject="B"))
    c = capture(mail("d3@x.example", subject="C"))
    review = policy("review", duration_days=30, action="review", reviewer=admin_user)
    keep = policy("keep 10 years", duration_days=3650, action="retain", directions=["outbound"])
    recompute()
    run = purge_expired()
    assert run.counts == {str(review.pk): {"review": 3}}
    assert EmailMessage.objects.filter(disposition="in_review", expires_at=None).count() == 3
    reviews = {r.email_id: r for r in DispositionReview.objects.all()}
    assert {r.reviewer_id for r in reviews.values()} == {admin_user.pk}
    assert send_review_reminders() == 1
    assert "3 disposition review(s)" in django_mail.outbox[-1].subject
    url = "/api/v1/disposition-reviews/{}/decide/"
    r = api_client_admin.post(url.format(reviews[a.pk].pk), {"decision": "approve"}, format="json")
    assert r.status_code == 400 and "justification" in r.json()
    r = api_client_admin.post(
        url.format(reviews[a.pk].pk),
        {"decision": "approve", "justification": "done"},
        format="json",
    )
    assert r.status_code == 200 and r.json()["status"] == "approved"
    assert not EmailMessage.objects.filter(pk=a.pk).exists()
    later = (datetime.now(UTC) + timedelta(days=90)).isoformat()
    r = api_client_admin.post(
        url.format(reviews[b.pk].pk),
        {"decision": "extend", "justification": "audit", "extend_to": later},
        format="json",
    )
    assert r.status_code == 200
    b.refresh_from_db()
    assert (b.expiry_rule, b.disposition) == (
        "review_extended",
        "reviewed",
    ) and b.expires_at > datetime.now(UTC)
    r = api_client_admin.post(
        url.format(reviews[c.pk].pk),
        {"decision": "relabel", "justification": "contract", "new_policy": keep.pk},
        format="json",
    )
    assert r.status_code == 200
    c.refresh_from_db()
    assert (c.expiry_policy_id, c.expiry_action, c.expires_at) == (keep.pk, "retain", None)
    r = api_client_admin.post(
        url.format(reviews[c.pk].pk), {"decision": "approve", "justification": "x"}, format="json"
    )
    assert r.status_code == 409
    recompute()  # reviewed messages keep the reviewer's decision
    b.refresh_from_db()
    assert b.expiry_rule == "review_extended"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        "retention.review_approved",
        "retention.review_extended",
        "retention.review_relabelled",
    } <= actions


def test_purge_runs_hold_no_personal_data_and_dry_runs_change_nothing():
    capture(mail("pd@x.example", frm="Zed Person <zed.person@private.example>"))
    p = policy(duration_days=30)
    recompute()
    out = io.StringIO()
    call_command("purge_expired", "--dry-run", stdout=out)
    assert json.loads(out.getvalue()) == {
        "would_act": {str(p.pk): {"delete": 1}},
        "held": 0,
        "vacuum": 0,
    }
    assert EmailMessage.objects.count() == 1
    call_command("purge_expired", "--no-progress", stdout=io.StringIO())
    assert EmailMessage.objects.count() == 0
    for run in PurgeRun.objects.all():
        text = json.dumps([run.counts, run.errors, run.worker])
        assert "zed" not in text.lower() and "private.example" not in text
    events = AuditEvent.objects.filter(action__startswith="retention.")
    assert "private.example" not in json.dumps(list(events.values_list("detail", flat=True)))


def test_recompute_command_reports_progress():
    capture(mail("rc@x.example"))
    policy(duration_days=30)
    out = io.StringIO()
    call_command("recompute_expiry", "--no-progress", stdout=out)
    assert "1/1 threads" in out.getvalue() and "1 messages, 1 changed" in out.getvalue()


def test_the_audit_log_keeps_its_chain_verifiable_when_old_events_go():
    from django.utils import timezone

    base = AuditEvent.objects.count()
    for i in range(5):
        record_event("test.old", detail={"i": i})
    seal_pending_events()
    cutoff = timezone.now()
    for i in range(3):
        record_event("test.new", detail={"i": i})
    seal_pending_events()
    assert prune_audit_log(datetime(2000, 1, 1, tzinfo=UTC)) == 0  # nothing that old
    assert prune_audit_log(cutoff) == base + 5
    assert AuditAnchor.objects.count() == 1
    assert set(AuditEvent.objects.values_list("action", flat=True)) == {"test.new", "audit.pruned"}
    seal_pending_events()
    report = verify_chain()
    assert report.ok and report.checked == 4, report
