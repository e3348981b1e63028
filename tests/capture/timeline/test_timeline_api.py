"""GET /api/v1/{contacts,organizations,items}/{id}/timeline/ and its pins."""

from __future__ import annotations

from datetime import timedelta

import pytest

from capture.models import TimelinePin
from governance.models import AuditEvent
from tests.capture.timeline.conftest import T0, make_thread
from tests.factories import make_contact, make_item, make_organization, make_user

pytestmark = pytest.mark.django_db


def url(record, suffix: str = "") -> str:
    kind = {"Contact": "contacts", "Organization": "organizations", "Item": "items"}
    return f"/api/v1/{kind[type(record).__name__]}/{record.pk}/timeline/{suffix}"


@pytest.mark.parametrize("maker", [make_contact, make_organization, make_item])
def test_each_kind_of_record_has_a_timeline_newest_thread_first(api, maker):
    record = maker()
    old = make_thread(record, start=T0)
    new = make_thread(record, n=2, start=T0 + timedelta(days=1))
    response = api(make_user(role="admin")).get(url(record))
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["thread"] for r in results] == [new.pk, old.pk]
    assert results[0]["message_count"] == 2
    assert results[0]["email"]["subject"] == f"{new.subject} #2"
    assert results[0]["pinned"] is False
    assert response.json()["next"] is None


def test_the_next_link_leads_through_every_page(api):
    contact = make_contact()
    threads = [make_thread(contact, start=T0 + timedelta(hours=i)) for i in range(5)]
    client = api(make_user(role="admin"))
    seen, next_url = [], url(contact) + "?size=2"
    while next_url:
        body = client.get(next_url).json()
        seen += [r["thread"] for r in body["results"]]
        next_url = body["next"]
    assert seen == [t.pk for t in reversed(threads)]


def test_a_bad_cursor_is_404_and_a_bad_size_400_never_500(api):
    contact = make_contact()
    client = api(make_user(role="admin"))
    assert client.get(url(contact) + "?cursor=%%%").status_code == 404
    assert client.get(url(contact) + "?size=abc").status_code == 400
    assert client.get(url(contact) + "?size=1000").status_code == 400


def test_an_unknown_record_is_404_and_a_token_without_capture_read_is_403(api):
    contact = make_contact()
    assert api(make_user(role="admin")).get("/api/v1/contacts/999999/timeline/").status_code == 404
    no_scope = api(make_user(role="admin"), scopes=("crm:read",))
    assert no_scope.get(url(contact)).status_code == 403


def test_a_member_sees_only_their_own_threads_on_a_shared_contact(api):
    alice, bob = make_user(), make_user()
    contact = make_contact()
    mine = make_thread(contact, owner=alice)
    make_thread(contact, owner=bob)
    results = api(alice).get(url(contact)).json()["results"]
    assert [r["thread"] for r in results] == [mine.pk]


@pytest.mark.parametrize("threads", [3, 30])
def test_a_page_costs_the_same_number_of_queries_however_many_threads(
    api, django_assert_max_num_queries, threads
):
    alice = make_user()
    org = make_organization()
    contacts = [make_contact(organization=org) for _ in range(3)]
    for i in range(threads):
        make_thread(contacts[i % 3], org, owner=alice, start=T0 + timedelta(hours=i))
    first = make_thread(org, owner=alice, start=T0 - timedelta(days=1))
    TimelinePin.objects.create(record_type="organization", record_id=org.pk, thread=first)
    for viewer in (alice, make_user(role="admin")):
        client = api(viewer)
        # token lookup, pins, the organization's contacts, links, threads, messages, meetings,
        # and what the viewer sees of the page's messages (capture.visibility.access_map: 2)
        with django_assert_max_num_queries(11):
            body = client.get(url(org) + "?size=10").json()
        assert len(body["results"]) == 1 + min(threads, 10)  # the pin, then up to ten
        with django_assert_max_num_queries(11):
            client.get(body["next"] if body["next"] else url(org))


def test_pinning_puts_a_thread_first_on_the_first_page_only_and_is_audited(api):
    contact = make_contact()
    owner = make_user()
    pinned = make_thread(contact, owner=owner, start=T0)
    newer = [make_thread(contact, owner=owner, start=T0 + timedelta(days=i + 1)) for i in range(3)]
    client = api(owner)
    response = client.post(url(contact, "pins/"), {"thread": pinned.pk}, format="json")
    assert response.status_code == 201, response.content
    first = client.get(url(contact) + "?size=2").json()
    assert [r["thread"] for r in first["results"]] == [pinned.pk, newer[2].pk, newer[1].pk]
    assert first["results"][0]["pinned"] is True
    second = client.get(first["next"]).json()
    assert [r["thread"] for r in second["results"]] == [newer[0].pk]
    event = AuditEvent.objects.get(action="timeline.pinned")
    assert event.detail["thread"] == pinned.pk
    assert event.detail["record_type"] == "contact"


def test_pinning_a_message_shows_that_message_for_its_thread(api):
    contact = make_contact()
    thread = make_thread(contact, n=3)
    email = thread.messages.order_by("date").first()
    client = api(make_user(role="admin"))
    assert client.post(url(contact, "pins/"), {"email": email.pk}, format="json").status_code == 201
    entry = client.get(url(contact)).json()["results"][0]
    assert entry["pinned"] is True
    assert entry["email"]["id"] == email.pk


def test_unpinning_restores_the_order_and_is_audited(api):
    contact = make_contact()
    old = make_thread(contact, start=T0)
    new = make_thread(contact, start=T0 + timedelta(days=1))
    client = api(make_user(role="admin"))
    client.post(url(contact, "pins/"), {"thread": old.pk}, format="json")
    assert client.delete(url(contact, f"pins/{old.pk}/")).status_code == 204
    results = client.get(url(contact)).json()["results"]
    assert [r["thread"] for r in results] == [new.pk, old.pk]
    assert AuditEvent.objects.filter(action="timeline.unpinned").count() == 1
    assert client.delete(url(contact, f"pins/{old.pk}/")).status_code == 404


def test_a_thread_not_on_the_records_timeline_cannot_be_pinned(api):
    contact, other = make_contact(), make_contact()
    thread = make_thread(other)
    client = api(make_user(role="admin"))
    response = client.post(url(contact, "pins/"), {"thread": thread.pk}, format="json")
    assert response.status_code == 400
    assert client.post(url(contact, "pins/"), {}, format="json").status_code == 400
    missing = client.post(url(contact, "pins/"), {"thread": 999999}, format="json")
    assert missing.status_code == 404
    assert not TimelinePin.objects.exists()


def test_a_member_cannot_pin_a_thread_they_may_not_see(api):
    contact = make_contact()
    thread = make_thread(contact, owner=make_user())
    response = api(make_user()).post(url(contact, "pins/"), {"thread": thread.pk}, format="json")
    assert response.status_code == 404
    assert not TimelinePin.objects.exists()


def test_pinning_needs_the_capture_write_scope(api):
    contact = make_contact()
    thread = make_thread(contact)
    client = api(make_user(role="admin"), scopes=("capture:read",))
    assert (
        client.post(url(contact, "pins/"), {"thread": thread.pk}, format="json").status_code == 403
    )
