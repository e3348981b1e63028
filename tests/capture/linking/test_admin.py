"""The linking admin: rules (audited, backfill preview and run), manual link and sticky
unlink, the review queue's actions; the pages load."""

from __future__ import annotations

import pytest
from django.test import Client

from capture.models import LinkRule, ReviewItem, ThreadLink, ThreadUnlink
from crm.models import User
from governance.models import AuditEvent
from tests.capture.linking.helpers import TOM, captured, item, linked_items, rule
from tests.factories import make_contact, make_user

pytestmark = pytest.mark.django_db
S = LinkRule.Strategy


@pytest.fixture
def admin_client() -> tuple[Client, User]:
    user = make_user(role=User.Role.ADMIN, is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client, user


def test_the_linking_pages_load(admin_client):
    client, _ = admin_client
    tom = make_contact(emails=(TOM,))
    item(tom)
    item(tom)
    rule(S.SINGLE_OPEN)
    captured()
    review = ReviewItem.objects.get()
    for url in (
        "/admin/capture/linkrule/",
        "/admin/capture/linkrule/add/",
        "/admin/capture/threadlink/",
        "/admin/capture/threadlink/add/",
        "/admin/capture/threadunlink/",
        "/admin/capture/unmatchedreference/",
        "/admin/capture/reviewitem/",
        f"/admin/capture/reviewitem/{review.pk}/change/",
    ):
        assert client.get(url).status_code == 200, url


def test_a_rule_added_in_admin_is_saved_and_audited(admin_client):
    client, _ = admin_client
    response = client.post(
        "/admin/capture/linkrule/add/",
        {
            "position": 1,
            "enabled": "on",
            "description": "Tickets by key",
            "kind": "ticket",
            "strategy": "reference",
            "recent_count": 5,
            "pattern": r"TCK-\d+",
            "direction": "both",
            "channels": "[]",
            "skip_auto_generated": "on",
        },
    )
    assert response.status_code == 302, response.content
    saved = LinkRule.objects.get()
    assert (saved.kind, saved.strategy, saved.pattern) == ("ticket", "reference", r"TCK-\d+")
    assert AuditEvent.objects.filter(action="link_rule.created", object_id=str(saved.pk)).exists()


def test_backfill_preview_shows_why_then_the_run_links_and_is_audited(admin_client):
    client, _ = admin_client
    email = captured()  # no rule yet: only the contact link
    tom = make_contact(emails=(TOM,))
    # the contact is created after the mail: rematch links the earlier thread to it
    from capture.rematch import rematch_addresses

    rematch_addresses([TOM])
    deal = item(tom)
    r = rule(S.SINGLE_OPEN)
    action = {"_selected_action": [r.pk], "index": 0}
    preview = client.post(
        "/admin/capture/linkrule/", {**action, "action": "preview_backfill"}, follow=True
    )
    assert f"thread {email.thread_id} → item {deal.pk}" in preview.content.decode()
    assert linked_items(email) == set()
    client.post("/admin/capture/linkrule/", {**action, "action": "run_backfill"}, follow=True)
    assert linked_items(email) == {deal.pk}
    assert ThreadLink.objects.get(item=deal).source == ThreadLink.Source.BACKFILL
    assert AuditEvent.objects.filter(action="links.backfilled").exists()


def test_a_manual_link_added_in_admin_and_a_sticky_unlink_by_action(admin_client):
    client, user = admin_client
    email = captured()
    deal = item()
    response = client.post(
        "/admin/capture/threadlink/add/", {"thread": email.thread_id, "item": deal.pk}
    )
    assert response.status_code == 302, response.content
    link = ThreadLink.objects.get(item=deal)
    assert (link.source, link.created_by) == (ThreadLink.Source.MANUAL, user)
    client.post(
        "/admin/capture/threadlink/",
        {"_selected_action": [link.pk], "action": "unlink", "index": 0},
        follow=True,
    )
    assert linked_items(email) == set()
    assert ThreadUnlink.objects.filter(thread_id=email.thread_id, item=deal).exists()


def test_the_review_queue_actions_resolve_and_dismiss(admin_client):
    client, _ = admin_client
    tom = make_contact(emails=(TOM,))
    item(tom)
    item(tom)
    rule(S.SINGLE_OPEN)
    a = captured(message_id="<a@globex.co.uk>", subject="one")
    captured(message_id="<b@globex.co.uk>", subject="two")
    first, second = ReviewItem.objects.order_by("id")
    for review, action in ((first, "resolve_top"), (second, "dismiss")):
        client.post(
            "/admin/capture/reviewitem/",
            {"_selected_action": [review.pk], "action": action, "index": 0},
            follow=True,
        )
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (
        ReviewItem.Status.RESOLVED,
        ReviewItem.Status.DISMISSED,
    )
    assert linked_items(a) == {first.candidates[0]}


def test_the_admin_link_form_refuses_a_thread_someone_else_owns_and_a_missing_record():
    from django.contrib.auth.models import Permission

    staff = make_user(is_staff=True)  # a member by role, allowed to add links in admin
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_threadlink", "view_threadlink"])
    )
    client = Client()
    client.force_login(staff)
    email = captured(user=make_user())
    deal = item()
    refused = client.post(
        "/admin/capture/threadlink/add/", {"thread": email.thread_id, "item": deal.pk}
    )
    assert refused.status_code == 200
    assert "owner or an admin" in refused.content.decode()
    empty = client.post("/admin/capture/threadlink/add/", {"thread": email.thread_id})
    assert empty.status_code == 200
    assert not ThreadLink.objects.filter(item__isnull=False).exists()
