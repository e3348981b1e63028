"""The timeline on the contact, organization and item admin change pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from tests.capture.timeline.conftest import T0, make_thread
from tests.factories import make_contact, make_item, make_organization, make_user

pytestmark = pytest.mark.django_db


def admin_client() -> Client:
    user = make_user(is_staff=True, is_superuser=True, role="admin")
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("maker", "path"),
    [
        (make_contact, "crm/contact"),
        (make_organization, "crm/organization"),
        (make_item, "crm/item"),
    ],
)
def test_a_records_change_page_shows_its_timeline(maker, path):
    record = maker()
    thread = make_thread(record, n=2)
    response = admin_client().get(f"/admin/{path}/{record.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="timeline"' in html
    assert f"{thread.subject} #2" in html
    assert f"/admin/capture/thread/{thread.pk}/change/" in html


def test_the_change_page_links_to_older_mail_and_shows_it():
    contact = make_contact()
    threads = [make_thread(contact, start=T0 + timedelta(hours=i)) for i in range(30)]
    client = admin_client()
    first = client.get(f"/admin/crm/contact/{contact.pk}/change/")
    html = first.content.decode()
    assert "Older mail" in html
    assert f"{threads[0].subject} #1" not in html
    next_url = html.split('<p><a href="')[-1].split("#timeline")[0].replace("&amp;", "&")
    later = client.get(f"/admin/crm/contact/{contact.pk}/change/{next_url}")
    assert f"{threads[0].subject} #1" in later.content.decode()


def test_a_change_page_without_mail_says_so():
    contact = make_contact()
    response = admin_client().get(f"/admin/crm/contact/{contact.pk}/change/")
    assert "No captured mail you may see" in response.content.decode()


def test_the_pin_admin_lists_pins_and_unpins_them_audited():
    from capture.models import TimelinePin
    from governance.models import AuditEvent

    contact = make_contact()
    thread = make_thread(contact)
    pin = TimelinePin.objects.create(record_type="contact", record_id=contact.pk, thread=thread)
    client = admin_client()
    assert client.get("/admin/capture/timelinepin/").status_code == 200
    response = client.post(
        "/admin/capture/timelinepin/", {"action": "unpin", "_selected_action": [pin.pk]}
    )
    assert response.status_code == 302
    assert not TimelinePin.objects.exists()
    assert AuditEvent.objects.get(action="timeline.unpinned").detail["thread"] == thread.pk
