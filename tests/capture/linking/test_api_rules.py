"""`/api/v1/link-rules/`: admins create, change and delete rules (audited); bad input is
400; the backfill of a rule or an item previews (GET) before it runs (POST)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from capture.models import LinkRule, ReviewItem
from crm.models import ApiToken, User
from governance.models import AuditEvent
from tests.capture.linking.helpers import TOM, captured, item, linked_items, rule
from tests.factories import make_contact, make_user

pytestmark = pytest.mark.django_db
URL = "/api/v1/link-rules/"
ALL = ["capture:read", "capture:write", "governance:admin"]


def client_for(user: User, scopes=ALL) -> APIClient:
    _, key = ApiToken.issue(user=user, name="t", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def admin() -> APIClient:
    return client_for(make_user(role=User.Role.ADMIN))


def test_an_admin_creates_changes_and_deletes_a_rule_each_audited(admin):
    created = admin.post(
        URL,
        {"kind": "ticket", "strategy": "reference", "pattern": r"TCK-\d+", "channels": ["imap"]},
        format="json",
    )
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert admin.patch(f"{URL}{pk}/", {"enabled": False}, format="json").status_code == 200
    assert LinkRule.objects.get(pk=pk).enabled is False
    assert admin.delete(f"{URL}{pk}/").status_code == 204
    actions = list(
        AuditEvent.objects.filter(object_id=str(pk)).order_by("id").values_list("action", flat=True)
    )
    assert actions == ["link_rule.created", "link_rule.changed", "link_rule.deleted"]


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "deal", "strategy": "reference", "pattern": "("},
        {"kind": "deal", "strategy": "reference"},
        {"kind": "car", "strategy": "single_open"},
        {"kind": "deal", "strategy": "best_guess"},
        {"kind": "deal", "strategy": "recent_open", "recent_count": 0},
        {"kind": "deal", "strategy": "single_open", "channels": ["fax"]},
        {"kind": "deal", "strategy": "single_open", "channels": "imap"},
        {"kind": "deal", "strategy": "single_open", "colour": "red"},
        ["not", "an", "object"],
    ],
)
def test_bad_rules_are_400_never_500(admin, body):
    assert admin.post(URL, body, format="json").status_code == 400
    assert not LinkRule.objects.exists()


def test_a_member_reads_rules_but_may_not_change_them():
    member = client_for(make_user())
    assert member.get(URL).status_code == 200
    body = {"kind": "deal", "strategy": "single_open"}
    assert member.post(URL, body, format="json").status_code == 403


def test_a_rules_backfill_previews_then_runs(admin):
    email = captured()
    tom = make_contact(emails=(TOM,))
    from capture.rematch import rematch_addresses

    rematch_addresses([TOM])
    deal = item(tom)
    r = rule()
    preview = admin.get(f"{URL}{r.pk}/backfill/").json()
    assert preview["links"][0]["thread"] == email.thread_id
    assert preview["links"][0]["item"] == deal.pk and TOM in preview["links"][0]["why"]
    assert linked_items(email) == set()
    assert admin.post(f"{URL}{r.pk}/backfill/").json() == {"links": 1}
    assert linked_items(email) == {deal.pk}


def test_an_items_backfill_previews_then_runs_and_bad_input_is_400(admin):
    tom = make_contact(emails=(TOM,))
    email = captured()
    deal = item(tom)
    rule()
    preview = admin.get(f"{URL}item-backfill/?item={deal.pk}").json()
    assert [(x["thread"], x["item"]) for x in preview["links"]] == [(email.thread_id, deal.pk)]
    assert admin.post(f"{URL}item-backfill/", {"item": deal.pk}, format="json").json() == {
        "links": 1
    }
    assert admin.get(f"{URL}item-backfill/?item=x").status_code == 400
    assert admin.get(f"{URL}item-backfill/?item=99999").status_code == 400
    assert admin.post(f"{URL}item-backfill/", ["x"], format="json").status_code == 400


def test_a_later_reply_adds_no_second_review_for_the_same_rule():
    tom = make_contact(emails=(TOM,))
    item(tom)
    item(tom)
    rule()
    captured(message_id="<a@globex.co.uk>")
    captured(message_id="<b@globex.co.uk>", in_reply_to="<a@globex.co.uk>", subject="Re: x")
    assert ReviewItem.objects.filter(kind=ReviewItem.Kind.AMBIGUOUS_ITEM).count() == 1
