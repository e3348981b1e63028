"""Manual link and unlink of a thread (owner or admin, audited, sticky), and every link's
"why" through `/api/v1/threads/{id}/links/`."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from capture.links import preview_backfill, run_backfill
from capture.models import LinkRule, ThreadLink, ThreadUnlink
from capture.rematch import rematch_addresses
from crm.models import ApiToken, User
from governance.models import AuditEvent
from tests.capture.linking.helpers import TOM, captured, item, linked_items, rule
from tests.factories import make_contact, make_organization, make_user

pytestmark = pytest.mark.django_db
S = LinkRule.Strategy


def client_for(user: User, scopes=("capture:read", "capture:write")) -> APIClient:
    _, key = ApiToken.issue(user=user, name="t", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def url(email) -> str:
    return f"/api/v1/threads/{email.thread_id}/links/"


def test_the_threads_owner_links_it_to_any_record_and_the_link_says_who_made_it():
    owner = make_user()
    email = captured(user=owner)
    deal = item()
    response = client_for(owner).post(url(email), {"item": deal.pk}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["source"] == ThreadLink.Source.MANUAL
    assert owner.username in response.json()["why"]
    assert linked_items(email) == {deal.pk}
    event = AuditEvent.objects.get(action="thread.linked")
    assert event.detail == {"target": "item", "target_id": deal.pk, "source": "manual"}
    assert event.actor_user_id == owner.pk


def test_a_member_who_does_not_own_the_thread_gets_403():
    email = captured(user=make_user())
    other = client_for(make_user())
    org = make_organization()
    assert other.post(url(email), {"organization": org.pk}, format="json").status_code == 403
    assert other.delete(url(email) + f"?organization={org.pk}").status_code == 403
    assert not ThreadLink.objects.filter(organization=org).exists()


def test_bad_input_is_400_never_500():
    owner = make_user()
    email = captured(user=owner)
    client = client_for(owner)
    assert client.post(url(email), {}, format="json").status_code == 400
    assert client.post(url(email), {"item": "x"}, format="json").status_code == 400
    assert client.post(url(email), {"item": 99999}, format="json").status_code == 400
    assert client.post(url(email), {"item": 1, "contact": 1}, format="json").status_code == 400
    assert client.post(url(email), {"deal": 1}, format="json").status_code == 400
    assert client.delete(url(email)).status_code == 400


def test_an_admin_unlinks_and_the_unlink_is_sticky_against_new_mail_rules_and_backfill():
    tom = make_contact(emails=(TOM,))
    deal = item(tom)
    rule(S.SINGLE_OPEN)
    first = captured(message_id="<a@globex.co.uk>", user=make_user())
    assert linked_items(first) == {deal.pk}
    admin = client_for(make_user(role=User.Role.ADMIN))
    assert admin.delete(url(first) + f"?item={deal.pk}").status_code == 204
    assert admin.delete(url(first), {"contact": tom.pk}, format="json").status_code == 204
    assert ThreadUnlink.objects.filter(thread_id=first.thread_id).count() == 2
    reply = captured(message_id="<b@globex.co.uk>", in_reply_to="<a@globex.co.uk>", subject="Re")
    assert reply.thread_id == first.thread_id
    assert linked_items(reply) == set()
    assert not ThreadLink.objects.filter(thread_id=first.thread_id, contact=tom).exists()
    assert preview_backfill(item=deal).links == []
    assert run_backfill(item=deal, actor="test", channel="cli") == 0
    rematch_addresses([TOM])
    assert linked_items(reply) == set()
    assert AuditEvent.objects.filter(action="thread.unlinked").count() == 2


def test_linking_again_by_hand_lifts_the_sticky_unlink():
    owner = make_user()
    email = captured(user=owner)
    deal = item()
    client = client_for(owner)
    client.post(url(email), {"item": deal.pk}, format="json")
    client.delete(url(email) + f"?item={deal.pk}")
    assert linked_items(email) == set()
    client.post(url(email), {"item": deal.pk}, format="json")
    assert linked_items(email) == {deal.pk}
    assert not ThreadUnlink.objects.exists()


def test_every_link_answers_why_in_the_api():
    tom = make_contact(emails=(TOM,))
    deal = item(tom)
    r = rule(S.SINGLE_OPEN)
    owner = make_user()
    email = captured(user=owner)
    links = client_for(owner).get(url(email)).json()
    by_kind = {("item" if x["item"] else "contact" if x["contact"] else "org"): x for x in links}
    assert by_kind["item"]["rule"] == r.pk and by_kind["item"]["strategy"] == "single_open"
    assert by_kind["item"]["item"] == deal.pk
    assert TOM in by_kind["item"]["why"] and f"rule #{r.pk}" in by_kind["item"]["why"]
    assert by_kind["contact"]["why"] == f"participant {TOM} matched"
    assert all(x["why"] for x in links)
    detail = client_for(owner).get(f"/api/v1/emails/{email.pk}/").json()
    assert {x["why"] for x in detail["links"]} == {x["why"] for x in links}


def test_a_thread_the_caller_cannot_see_is_404_when_reading_its_links():
    email = captured(user=make_user())
    assert client_for(make_user()).get(url(email)).status_code == 404


def test_an_unlink_stays_sticky_when_a_late_parent_absorbs_the_thread():
    tom = make_contact(emails=(TOM,))
    deal = item(tom)
    rule(S.SINGLE_OPEN)
    reply = captured(message_id="<r@globex.co.uk>", in_reply_to="<p@globex.co.uk>", subject="Re: x")
    admin = client_for(make_user(role=User.Role.ADMIN))
    assert admin.delete(url(reply) + f"?item={deal.pk}").status_code == 204
    parent = captured(message_id="<p@globex.co.uk>", subject="x")
    reply.refresh_from_db()
    assert reply.thread_id == parent.thread_id
    assert linked_items(parent) == set()
    assert ThreadUnlink.objects.filter(thread_id=parent.thread_id, item=deal).exists()


def test_a_threads_sticky_unlinks_are_listed_and_unmatched_references_show_on_the_email():
    owner = make_user()
    rule(S.REFERENCE, pattern=r"PO-\d+")
    email = captured(user=owner, subject="About PO-404")
    deal = item()
    client = client_for(owner)
    client.post(url(email), {"item": deal.pk}, format="json")
    client.delete(url(email) + f"?item={deal.pk}")
    unlinks = client.get(f"/api/v1/threads/{email.thread_id}/unlinks/").json()
    assert [(u["item"], u["removed_by"]) for u in unlinks] == [(deal.pk, owner.pk)]
    detail = client.get(f"/api/v1/emails/{email.pk}/").json()
    assert detail["unmatched_references"] == ["PO-404"]
