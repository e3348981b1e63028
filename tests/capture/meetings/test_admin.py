"""The Meeting admin: a list with status and message counts, and a page with the occurrences
of the next 90 days, the changed occurrences and the messages that carried the meeting."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from capture.models import Meeting
from tests.capture.meetings.ics import calendar, invite_mail, vevent
from tests.capture.pipeline.helpers import capture
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def weekly() -> Meeting:
    """Three weekly occurrences from tomorrow on, the second cancelled."""
    first = timezone.now().date() + timedelta(days=1)
    second = first + timedelta(days=7)

    def at(day) -> str:
        return f"{day:%Y%m%d}T100000"

    series = vevent(start=at(first), end=f"{first:%Y%m%d}T110000", rrule="FREQ=WEEKLY;COUNT=3")
    capture(invite_mail(calendar("REQUEST", series), message_id="<weekly@acme-widgets.com>"))
    cancel = vevent(
        recurrence_id=at(second), start=at(second), end=f"{second:%Y%m%d}T110000", sequence=1
    )
    capture(
        invite_mail(
            calendar("CANCEL", cancel), message_id="<cancel@acme-widgets.com>", method="CANCEL"
        )
    )
    return Meeting.objects.get()


def test_the_meeting_list_shows_status_and_how_many_messages_carried_it(admin_client, weekly):
    res = admin_client.get("/admin/capture/meeting/")
    assert res.status_code == 200
    assert res.context["cl"].result_count == 1
    row = res.context["cl"].result_list[0]
    assert (row.summary, row.n_messages) == ("Weekly widget sync", 2)
    assert (
        admin_client.get("/admin/capture/meeting/?q=widget&status__exact=confirmed").status_code
        == 200
    )


def test_the_meeting_page_lists_the_next_occurrences_without_the_cancelled_one(
    admin_client, weekly
):
    res = admin_client.get(f"/admin/capture/meeting/{weekly.pk}/change/")
    assert res.status_code == 200
    page = res.content.decode()
    first = timezone.now().date() + timedelta(days=1)
    shown = [f"{first + timedelta(days=d):%Y-%m-%d} 10:00" in page for d in (0, 7, 14)]
    assert shown == [True, False, True]
    assert "CANCEL" in page  # the cancel message is listed
    assert "/admin/capture/emailmessage/" in page


def test_a_meeting_cannot_be_added_or_deleted_in_admin(admin_client, weekly):
    assert admin_client.get("/admin/capture/meeting/add/").status_code == 403
    assert admin_client.get(f"/admin/capture/meeting/{weekly.pk}/delete/").status_code == 403


def test_a_message_page_lists_the_meetings_it_carried(admin_client, weekly):
    email = weekly.emails.get(message_id="cancel@acme-widgets.com")
    res = admin_client.get(f"/admin/capture/emailmessage/{email.pk}/change/")
    assert res.status_code == 200
    page = res.content.decode()
    assert "Meeting messages" in page
    assert "CANCEL" in page
