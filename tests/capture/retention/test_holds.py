"""Legal holds: nothing in scope is purged, redacted, anonymised or deleted (by policy, by an
admin, by a never-log removal) while a hold is active; holds add up; placing and releasing
is audited; `held()` reports which holds keep which message."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import transaction

from capture.holds import MessageOnHold, held, release_hold
from capture.models import EmailMessage, LegalHold, ThreadLink
from capture.purge import dispose_now, purge_expired
from capture.retention import recompute
from governance.models import AuditEvent
from tests.capture.retention.helpers import capture, mail, policy
from tests.factories import make_contact, make_item, make_never_log_rule

pytestmark = pytest.mark.django_db


def _three_messages():
    a = capture(mail("a@x.example", frm="Tom <tom@globex.example>", subject="A"))
    b = capture(mail("b@x.example", frm="Ann <ann@initech.example>", subject="B"))
    c = capture(
        mail("c@x.example", frm="Bob <bob@umbrella.example>", subject="C",
             date=datetime(2021, 5, 1, tzinfo=UTC))
    )  # fmt: skip
    return a, b, c


def test_a_hold_stops_every_policy_action_and_its_release_lets_the_next_run_act(api_client_admin):
    a, _b, _c = _three_messages()
    contact = make_contact(emails=("tom@globex.example",))
    a.participants.filter(address="tom@globex.example").update(contact=contact)
    r = api_client_admin.post(
        "/api/v1/legal-holds/",
        {"name": "Case 42", "reason": "litigation", "contacts": [contact.pk]},
        format="json",
    )
    assert r.status_code == 201, r.content
    assert r.json()["coverage"] == {"messages": 1, "threads": 1}
    for i, action in enumerate(("delete", "redact", "anonymise")):
        policy(f"p{i}", duration_days=30, action=action, order=i)
        recompute()
        run = purge_expired()
        assert run.held == 1
        a.refresh_from_db()
        assert a.text_body and a.disposition == "" and a.from_address == "tom@globex.example"
        EmailMessage.objects.filter(pk=a.pk).update(expires_at=None)
    hold = LegalHold.objects.get()
    release_hold(hold, actor="test", channel="test")
    recompute()
    purge_expired()
    assert not EmailMessage.objects.filter(pk=a.pk).exists()  # delete: the lowest order of equals
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"retention.hold_placed", "retention.hold_released", "retention.held"} <= actions


def test_holds_add_up_and_held_names_every_hold():
    a, b, c = _three_messages()
    item = make_item(kind="deal")
    ThreadLink.objects.create(thread=b.thread, item=item, source="manual")
    h1 = LegalHold.objects.create(name="deal hold", reason="r")
    h1.items.set([item])
    LegalHold.objects.create(
        name="2021",
        reason="r",
        date_from=datetime(2021, 1, 1, tzinfo=UTC),
        date_to=datetime(2021, 12, 31, tzinfo=UTC),
    )
    h3 = LegalHold.objects.create(name="subject B", reason="r", saved_filter={"subject": "B"})
    h4 = LegalHold.objects.create(name="thread of A", reason="r")
    h4.threads.set([a.thread])
    found = held([a.pk, b.pk, c.pk])
    assert found == {a.pk: ["thread of A"], b.pk: ["deal hold", "subject B"], c.pk: ["2021"]}
    release_hold(h3, actor="t", channel="t")
    assert held([b.pk]) == {b.pk: ["deal hold"]}


def test_an_admin_delete_and_a_disposal_refuse_held_mail(admin_client_logged_in):
    a, b, _c = _three_messages()
    hold = LegalHold.objects.create(name="all of A", reason="r", saved_filter={"subject": "A"})
    with pytest.raises(MessageOnHold):
        dispose_now([a.pk, b.pk], reason="admin", actor="test")
    assert EmailMessage.objects.count() == 3  # all or nothing
    with pytest.raises(MessageOnHold), transaction.atomic():
        a.delete()  # any door: the pre_delete guard
    r = admin_client_logged_in.post(
        "/admin/capture/expiringmessage/",
        {"action": "delete_now", "_selected_action": [a.pk]},
        follow=True,
    )
    assert r.status_code == 200
    assert b"on legal hold" in r.content
    assert EmailMessage.objects.filter(pk=a.pk).exists()
    r = admin_client_logged_in.post(
        "/admin/capture/expiringmessage/",
        {"action": "delete_now", "_selected_action": [b.pk]},
        follow=True,
    )
    assert not EmailMessage.objects.filter(pk=b.pk).exists()
    assert hold.active


def test_a_never_log_removal_leaves_held_mail(django_capture_on_commit_callbacks):
    from capture.removal import remove_never_logged

    a, _b, _c = _three_messages()
    LegalHold.objects.create(
        name="globex", reason="r", saved_filter={"address": "tom@globex.example"}
    )
    rule = make_never_log_rule("globex.example")
    counts = remove_never_logged(rule.pk)
    assert counts["messages"] == 0
    assert EmailMessage.objects.filter(pk=a.pk).exists()


def test_hold_api_validates_and_releases(api_client_admin):
    r = api_client_admin.post(
        "/api/v1/legal-holds/",
        {"name": "x", "reason": "y", "saved_filter": {"colour": "red"}},
        format="json",
    )
    assert r.status_code == 400 and "saved_filter" in r.json()
    r = api_client_admin.post("/api/v1/legal-holds/", {"name": "x", "reason": "y"}, format="json")
    pk = r.json()["id"]
    r = api_client_admin.post(f"/api/v1/legal-holds/{pk}/release/")
    assert r.status_code == 200 and r.json()["active"] is False
    r = api_client_admin.patch(f"/api/v1/legal-holds/{pk}/", {"name": "z"}, format="json")
    assert r.status_code == 400
