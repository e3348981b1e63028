"""/api/v1/meetings/: visible as the messages that carried them, filtered like emails,
occurrences expanded for a window; bad input is a 400."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from capture.models import Meeting
from tests.capture.meetings.ics import calendar, invite_mail, vevent
from tests.capture.read.conftest import capture_bytes
from tests.factories import make_contact, make_item, make_organization, make_user

pytestmark = pytest.mark.django_db

SERIES = {"rrule": "FREQ=WEEKLY;BYDAY=MO;COUNT=8", "exdate": "20250317T100000"}


@pytest.fixture
def world():
    """Alice captured a weekly series organised by Jane (Acme); Bob captured a one-off with
    Globex; Carol captured nothing."""
    alice = make_user(username="alice", email="alice@mailwarden-demo.com")
    bob = make_user(username="bob", email="bob@mailwarden-demo.com")
    carol = make_user(username="carol", email="carol@mailwarden-demo.com")
    admin = make_user(username="root", role="admin")
    acme = make_organization(name="Acme", domains=("acme-widgets.com",))
    jane = make_contact(emails=("jane.doe@acme-widgets.com",), organization=acme)
    series_email = capture_bytes(
        invite_mail(
            calendar("REQUEST", vevent(**SERIES)),
            message_id="<series@acme-widgets.com>",
            to="Alice <alice@mailwarden-demo.com>",
        ),
        alice,
    )
    one_off_email = capture_bytes(
        invite_mail(
            calendar(
                "REQUEST",
                vevent(
                    uid="one-off@globex.co.uk",
                    organizer="tom.buyer@globex.co.uk",
                    attendees=("bob@mailwarden-demo.com",),
                    start="20250610T090000",
                    end="20250610T093000",
                    summary="Contract call",
                ),
            ),
            message_id="<one-off@globex.co.uk>",
            from_="Tom Buyer <tom.buyer@globex.co.uk>",
            to="Bob <bob@mailwarden-demo.com>",
        ),
        bob,
    )
    return {
        "alice": alice,
        "bob": bob,
        "carol": carol,
        "admin": admin,
        "acme": acme,
        "jane": jane,
        "series": Meeting.objects.get(emails=series_email),
        "one_off": Meeting.objects.get(emails=one_off_email),
    }


def ids(res) -> list[int]:
    assert res.status_code == 200, res.content
    return [row["id"] for row in res.json()["results"]]


def test_a_member_sees_the_meetings_of_the_mail_they_captured_and_no_others(world, api):
    assert ids(api(world["alice"]).get("/api/v1/meetings/")) == [world["series"].pk]
    assert ids(api(world["carol"]).get("/api/v1/meetings/")) == []
    url = f"/api/v1/meetings/{world['series'].pk}/"
    assert api(world["carol"]).get(url).status_code == 404
    assert api(world["carol"]).get(url + "occurrences/").status_code == 404


def test_an_admin_sees_every_meeting_newest_first(world, api):
    assert ids(api(world["admin"]).get("/api/v1/meetings/")) == [
        world["one_off"].pk,
        world["series"].pk,
    ]


def test_the_detail_has_people_messages_and_overrides(world, api):
    res = api(world["alice"]).get(f"/api/v1/meetings/{world['series'].pk}/")
    assert res.status_code == 200
    body = res.json()
    assert body["recurring"] is True
    assert body["summary"] == "Weekly widget sync"
    assert body["organizer"] == "jane.doe@acme-widgets.com"
    assert [m["method"] for m in body["messages"]] == ["REQUEST"]
    assert body["overrides"] == []
    assert "timing" not in body


def test_meetings_filter_by_contact_organization_item_and_date_window(world, api):
    admin = api(world["admin"])
    assert ids(admin.get(f"/api/v1/meetings/?contact={world['jane'].pk}")) == [world["series"].pk]
    assert ids(admin.get(f"/api/v1/meetings/?organization={world['acme'].pk}")) == [
        world["series"].pk
    ]
    deal = make_item(title="Widget deal")
    assert ids(admin.get(f"/api/v1/meetings/?item={deal.pk}")) == []
    june = "date_after=2025-06-01T00:00:00Z&date_before=2025-07-01T00:00:00Z"
    # the series is recurring but starts before June: it may still have occurrences there
    assert set(ids(admin.get(f"/api/v1/meetings/?{june}"))) == {
        world["one_off"].pk,
        world["series"].pk,
    }
    assert ids(admin.get("/api/v1/meetings/?date_before=2025-04-01T00:00:00Z")) == [
        world["series"].pk
    ]
    assert ids(admin.get("/api/v1/meetings/?status=cancelled")) == []


def test_occurrences_of_a_series_in_a_window(world, api):
    url = f"/api/v1/meetings/{world['series'].pk}/occurrences/"
    res = api(world["alice"]).get(
        url, {"start": "2025-03-01T00:00:00Z", "end": "2025-04-01T00:00:00Z"}
    )
    assert res.status_code == 200, res.content
    body = res.json()
    assert body["truncated"] is False
    starts = [datetime.fromisoformat(o["start"]).astimezone(UTC) for o in body["occurrences"]]
    assert starts == [
        datetime(2025, 3, 3, 9, 0, tzinfo=UTC),
        datetime(2025, 3, 10, 9, 0, tzinfo=UTC),
        datetime(2025, 3, 24, 9, 0, tzinfo=UTC),
        datetime(2025, 3, 31, 8, 0, tzinfo=UTC),
    ]


@pytest.mark.parametrize(
    "query",
    [
        {"start": "yesterday"},
        {"start": "2025-03-01T00:00:00Z", "end": "2025-02-01T00:00:00Z"},
        {"start": "2025-01-01T00:00:00Z", "end": "2027-01-01T00:00:00Z"},
    ],
)
def test_a_bad_occurrence_window_is_a_400(world, api, query):
    url = f"/api/v1/meetings/{world['series'].pk}/occurrences/"
    assert api(world["alice"]).get(url, query).status_code == 400


@pytest.mark.parametrize("query", ["contact=x", "date_after=soon", "status=postponed"])
def test_a_bad_filter_is_a_400(world, api, query):
    assert api(world["admin"]).get(f"/api/v1/meetings/?{query}").status_code == 400


def test_reading_meetings_needs_the_capture_read_scope(world, api):
    assert api(world["alice"], scopes=("crm:read",)).get("/api/v1/meetings/").status_code == 403
