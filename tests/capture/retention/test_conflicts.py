"""Every conflict rule of docs/retention.md "Conflicts" (Microsoft Purview's principles), on
the resolution itself and end to end through recompute on stored mail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from capture.models import EmailMessage, ThreadLink
from capture.retention import Facts, Spec, recompute, resolve
from tests.capture.retention.helpers import OLD, capture, mail, policy
from tests.factories import make_contact, make_item, make_organization

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def facts(pk: int = 1, thread: int = 1, **kw) -> Facts:
    f = Facts(pk, thread, T0, "inbound", "full", frozenset(), "", (None, None, "", ""))
    for k, v in kw.items():
        setattr(f, k, v)
    return f


def spec(pk: int, days: int, action: str = "delete", **kw) -> Spec:
    return Spec(
        id=pk,
        order=kw.pop("order", 0),
        trigger=kw.pop("trigger", "received"),
        days=days,
        action=action,
        **kw,
    )


def one(f: Facts, specs: list[Spec]):
    return resolve([f], specs)[f.id]


def test_one_policy_sets_the_date_and_says_so():
    o = one(facts(), [spec(1, 30)])
    assert (o.expires_at, o.policy_id, o.action, o.rule) == (
        T0 + timedelta(days=30),
        1,
        "delete",
        "only_policy",
    )


def test_the_shortest_deletion_wins_among_deletions():
    o = one(facts(), [spec(1, 90), spec(2, 30, "redact"), spec(3, 60)])
    assert (o.policy_id, o.action, o.rule) == (2, "redact", "shortest_deletion")
    assert o.expires_at == T0 + timedelta(days=30)


def test_explicit_scope_beats_the_implicit_default_even_when_longer():
    f = facts(direction="outbound")
    o = one(f, [spec(1, 30), spec(2, 365, directions=frozenset({"outbound"}))])
    assert (o.policy_id, o.rule) == (2, "explicit_over_implicit")
    # a message outside the explicit scope keeps the default
    assert (
        one(
            facts(direction="inbound"),
            [spec(1, 30), spec(2, 365, directions=frozenset({"outbound"}))],
        ).policy_id
        == 1
    )


def test_retention_beats_deletion_and_the_longest_retention_wins():
    o = one(facts(), [spec(1, 30), spec(2, 400, "retain"), spec(3, 700, "retain")])
    assert o.expires_at == T0 + timedelta(days=700)
    assert (o.policy_id, o.action) == (1, "delete")  # what happens then, from the disposal
    assert o.rule == "retention_over_deletion:3"


def test_retention_alone_sets_no_disposal():
    o = one(facts(), [spec(1, 30, "retain"), spec(2, 90, "retain")])
    assert (o.expires_at, o.policy_id, o.action, o.rule) == (None, 2, "retain", "longest_retention")


def test_a_retained_message_keeps_its_whole_thread():
    kept = facts(1, thread=7, categories=frozenset({"Contract"}))
    other = facts(2, thread=7)
    elsewhere = facts(3, thread=8)
    specs = [spec(1, 30), spec(2, 3650, "retain", categories=frozenset({"Contract"}))]
    out = resolve([kept, other, elsewhere], specs)
    assert out[2].expires_at == T0 + timedelta(days=3650)
    assert out[2].rule == "thread_retained:2"
    assert out[3].expires_at == T0 + timedelta(days=30)


def test_a_retention_not_yet_triggered_retains_indefinitely():
    # retain 1 year after the item closes; the item is still open: no disposal date
    o = one(facts(), [spec(1, 30), spec(2, 365, "retain", trigger="item_closed")])
    assert o.expires_at is None and o.rule.startswith("retention_over_deletion")


def test_a_disposal_not_yet_triggered_does_not_apply():
    o = one(facts(), [spec(1, 30, trigger="consent_withdrawn")])
    assert o.expires_at is None and o.rule == ""


def test_an_action_already_applied_is_not_chosen_again():
    o = one(facts(disposition="redacted"), [spec(1, 30, "redact"), spec(2, 90)])
    assert (o.policy_id, o.action) == (2, "delete")


def test_ties_go_to_the_lower_order():
    o = one(facts(), [spec(5, 30, "redact", order=2), spec(6, 30, "anonymise", order=1)])
    assert o.policy_id == 6


@pytest.mark.django_db
def test_recompute_stores_expiry_and_why_on_each_message():
    org = make_organization(domains=("globex.example",))
    deal = make_item(kind="deal", organization=org)
    linked = capture(mail("linked@x.example"))
    ThreadLink.objects.create(thread=linked.thread, item=deal, source="manual")
    unlinked = capture(mail("alone@x.example", frm="Ann <ann@other.example>", subject="Other"))
    default = policy("default", duration_days=3650)
    loose = policy("unlinked mail", duration_days=30, unlinked_only=True)
    by_org = policy("globex", duration_days=700, organizations=[org])
    recompute()
    linked.refresh_from_db()
    unlinked.refresh_from_db()
    assert (linked.expiry_policy_id, linked.expiry_rule) == (by_org.pk, "explicit_over_implicit")
    assert linked.expires_at == OLD + timedelta(days=700)
    assert (unlinked.expiry_policy_id, unlinked.expiry_rule) == (loose.pk, "explicit_over_implicit")
    assert default.pk not in {linked.expiry_policy_id, unlinked.expiry_policy_id}


@pytest.mark.django_db
def test_the_item_closing_starts_the_clock_and_reopening_stops_it(
    django_capture_on_commit_callbacks,
):
    deal = make_item(kind="deal")
    email = capture(mail("deal@x.example"))
    ThreadLink.objects.create(thread=email.thread, item=deal, source="manual")
    p = policy("after close", duration_days=10, trigger="item_closed")
    recompute()
    email.refresh_from_db()
    assert email.expires_at is None
    deal.status = "won"
    with django_capture_on_commit_callbacks(execute=True):
        deal.save()  # the hook queues a recompute (runs in-process here)
    email.refresh_from_db()
    deal.refresh_from_db()
    assert email.expires_at == deal.closed_at + timedelta(days=10)
    assert email.expiry_policy_id == p.pk
    deal.status = "open"
    with django_capture_on_commit_callbacks(execute=True):
        deal.save()
    email.refresh_from_db()
    assert email.expires_at is None


@pytest.mark.django_db
def test_consent_withdrawn_starts_the_clock_and_legal_basis_scopes(
    django_capture_on_commit_callbacks,
):
    from governance.consent import record_consent

    contact = make_contact(emails=("tom.buyer@globex.example",))
    record_consent(contact.pk, basis="consent", channel="api")
    email = capture(mail("consent@x.example"))
    assert email.participants.filter(contact=contact).exists()
    by_basis = policy("consented", duration_days=5000, legal_bases=["consent"])
    withdrawn = policy("withdrawn", duration_days=0, trigger="consent_withdrawn")
    recompute()
    email.refresh_from_db()
    assert email.expiry_policy_id == by_basis.pk
    with django_capture_on_commit_callbacks(execute=True):
        record_consent(contact.pk, basis="consent", action="withdrawn", channel="api")
    email.refresh_from_db()  # the consent hook recomputed
    assert email.expiry_policy_id == withdrawn.pk
    assert email.expires_at is not None and email.expires_at <= datetime.now(UTC)


@pytest.mark.django_db
def test_a_policy_saved_through_the_api_previews_first_and_recomputes_after(
    api_client_admin, django_capture_on_commit_callbacks
):
    capture(mail("p1@x.example"))
    capture(mail("p2@x.example", date=datetime.now(UTC) - timedelta(days=25), subject="Recent"))
    body = {"name": "30 days", "duration_days": 30, "action": "delete"}
    r = api_client_admin.post("/api/v1/retention-policies/?dry_run=1", body, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["after"]["now"] == 1 and r.json()["after"]["7d"] == 2
    assert r.json()["before"]["now"] == 0
    assert not EmailMessage.objects.filter(expires_at__isnull=False).exists()
    with django_capture_on_commit_callbacks(execute=True):
        r = api_client_admin.post("/api/v1/retention-policies/", body, format="json")
    assert r.status_code == 201, r.content
    assert EmailMessage.objects.filter(expires_at__isnull=False).count() == 2
    email = EmailMessage.objects.get(message_id="p1@x.example")
    why = api_client_admin.get(f"/api/v1/emails/{email.pk}/expiry/").json()
    assert why["policy_name"] == "30 days" and why["rule"] == "only_policy"
    assert why["why"] == "the only policy that applies"
