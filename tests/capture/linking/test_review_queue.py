"""The review queue: ambiguous items and contacts with ranked candidates; resolve one or
many (to the top candidate or elsewhere), dismiss; audited; settles the thread's others."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from capture.models import LinkRule, Participant, ReviewItem, ThreadLink
from crm.models import ApiToken, Item, User
from governance.models import AuditEvent
from tests.capture.linking.helpers import TOM, captured, item, linked_items, rule
from tests.factories import make_contact, make_organization, make_user

pytestmark = pytest.mark.django_db
S = LinkRule.Strategy
URL = "/api/v1/review-items/"


def client_for(user: User) -> APIClient:
    _, key = ApiToken.issue(user=user, name="t", scopes=["capture:read", "capture:write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def ambiguous():
    """A captured thread whose sender has two open deals, the second owned by the capturer."""
    owner = make_user()
    tom = make_contact(emails=(TOM,))
    a = item(tom, activity=datetime(2025, 3, 1, tzinfo=UTC), title="Pumps")
    b = item(tom, activity=datetime(2025, 2, 1, tzinfo=UTC), title="April delivery", owner=owner)
    rule(S.SINGLE_OPEN)
    email = captured(user=owner, subject="Delivery schedule for April")
    return owner, email, a, b


def test_candidates_are_ranked_by_activity_participants_owner_and_subject_each_with_why(ambiguous):
    _, _, a, b = ambiguous
    review = ReviewItem.objects.get(kind=ReviewItem.Kind.AMBIGUOUS_ITEM)
    # b is older but owned by the capturing user and shares the subject: it ranks first
    assert review.candidates == [b.pk, a.pk]
    top, second = review.detail["ranked"]
    assert top["score"] > second["score"]
    assert {w["code"] for w in top["why"]} == {
        "recent_activity",
        "participants",
        "owner",
        "subject",
    }
    assert {w["code"] for w in second["why"]} == {"recent_activity", "participants"}


def test_resolving_with_the_top_candidate_links_the_thread_and_is_audited(ambiguous):
    owner, email, _, b = ambiguous
    review = ReviewItem.objects.get(kind=ReviewItem.Kind.AMBIGUOUS_ITEM)
    response = client_for(owner).post(f"{URL}{review.pk}/resolve/", {}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"resolved": 1}
    assert linked_items(email) == {b.pk}
    link = ThreadLink.objects.get(thread_id=email.thread_id, item=b)
    assert link.source == ThreadLink.Source.REVIEW and link.created_by == owner
    review.refresh_from_db()
    assert (review.status, review.resolved_by) == (ReviewItem.Status.RESOLVED, owner)
    event = AuditEvent.objects.get(action="review.resolved")
    assert event.detail == {"target": "item", "target_id": b.pk, "closed": 0}


def test_resolving_elsewhere_links_the_record_chosen_even_if_not_a_candidate(ambiguous):
    owner, email, _, _ = ambiguous
    elsewhere = item(kind=Item.Kind.DEAL)
    review = ReviewItem.objects.get(kind=ReviewItem.Kind.AMBIGUOUS_ITEM)
    client_for(owner).post(f"{URL}{review.pk}/resolve/", {"item": elsewhere.pk}, format="json")
    assert linked_items(email) == {elsewhere.pk}


def test_resolution_closes_the_other_reviews_of_the_thread_it_settles(ambiguous):
    owner, email, a, b = ambiguous
    first = ReviewItem.objects.get(kind=ReviewItem.Kind.AMBIGUOUS_ITEM)
    second = ReviewItem.objects.create(
        kind=ReviewItem.Kind.AMBIGUOUS_ITEM,
        thread_id=email.thread_id,
        candidates=[a.pk, b.pk],
        detail={"kind": "deal", "rule": 999},
    )
    lead_review = ReviewItem.objects.create(
        kind=ReviewItem.Kind.AMBIGUOUS_ITEM, thread_id=email.thread_id, detail={"kind": "lead"}
    )
    client_for(owner).post(f"{URL}{first.pk}/resolve/", {"item": a.pk}, format="json")
    second.refresh_from_db()
    lead_review.refresh_from_db()
    assert second.status == ReviewItem.Status.RESOLVED
    assert lead_review.status == ReviewItem.Status.OPEN


def test_many_are_resolved_or_dismissed_at_once():
    admin = make_user(role=User.Role.ADMIN)
    tom = make_contact(emails=(TOM,))
    item(tom)
    item(tom)
    rule(S.SINGLE_OPEN)
    e1 = captured(message_id="<a@globex.co.uk>", subject="one")
    e2 = captured(message_id="<b@globex.co.uk>", subject="two")
    e3 = captured(message_id="<c@globex.co.uk>", subject="three")
    reviews = {r.thread_id: r.pk for r in ReviewItem.objects.all()}
    assert len(reviews) == 3
    client = client_for(admin)
    done = client.post(
        f"{URL}resolve/", {"ids": [reviews[e1.thread_id], reviews[e2.thread_id]]}, format="json"
    )
    assert done.json() == {"resolved": 2}
    dismissed = client.post(f"{URL}dismiss/", {"ids": [reviews[e3.thread_id]]}, format="json")
    assert dismissed.json() == {"dismissed": 1}
    assert linked_items(e3) == set()
    assert AuditEvent.objects.filter(action="review.dismissed").count() == 1


def test_bad_input_is_400_and_someone_elses_thread_is_404(ambiguous):
    owner, _, a, _ = ambiguous
    review = ReviewItem.objects.get(kind=ReviewItem.Kind.AMBIGUOUS_ITEM)
    client = client_for(owner)
    assert client.post(f"{URL}resolve/", {"ids": []}, format="json").status_code == 400
    assert client.post(f"{URL}resolve/", {"ids": ["x"]}, format="json").status_code == 400
    assert client.post(f"{URL}resolve/", {"ids": [10**9]}, format="json").status_code == 400
    bad = client.post(f"{URL}{review.pk}/resolve/", {"item": 10**9}, format="json")
    assert bad.status_code == 400
    admin_owned = captured(user=make_user(role=User.Role.ADMIN), message_id="<z@globex.co.uk>")
    other = ReviewItem.objects.create(
        kind=ReviewItem.Kind.AMBIGUOUS_ITEM, thread_id=admin_owned.thread_id, candidates=[a.pk]
    )
    stranger = client_for(make_user())
    assert stranger.post(f"{URL}{other.pk}/resolve/", {}, format="json").status_code == 404


def test_an_ambiguous_contact_gets_ranked_candidates_and_resolving_matches_and_links_it():
    org = make_organization(domains=("globex.co.uk",))
    owner = make_user()
    ours = make_contact(emails=(TOM,), organization=org, owner=owner)
    theirs = make_contact(emails=(TOM,))
    make_contact(emails=("ann@globex.co.uk",), organization=org)
    email = captured(user=owner, cc="ann@globex.co.uk")
    review = ReviewItem.objects.get(kind=ReviewItem.Kind.AMBIGUOUS_CONTACT)
    assert review.candidates == [ours.pk, theirs.pk]
    assert {w["code"] for w in review.detail["ranked"][0]["why"]} >= {"owner", "participants"}
    client_for(owner).post(f"{URL}{review.pk}/resolve/", {}, format="json")
    participant = Participant.objects.get(pk=review.participant_id)
    assert (participant.match, participant.contact_id) == (Participant.Match.MATCHED, ours.pk)
    assert ThreadLink.objects.filter(thread_id=email.thread_id, contact=ours).exists()
