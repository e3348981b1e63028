"""Reading tracking: the events API (by message, by contact, as the caller may see), the
captured message's detail, the timelines, and the admin pages."""

from __future__ import annotations

from email.message import EmailMessage as MimeMessage

import pytest
from django.test import Client

from capture.intake import RawSpec, store_raw_message
from capture.models import TrackingEvent
from capture.pipeline import process_raw_message
from capture.tracking.service import visible_events
from tests.capture.tracking.conftest import grant
from tests.factories import make_contact, make_user

pytestmark = pytest.mark.django_db
LINK = "https://example.org/offer"


@pytest.fixture(autouse=True)
def _not_too_soon(settings):
    settings.MAILWARDEN_TRACKING_MACHINE_SECONDS = 0


def sent_mail(message_id: str, to: list[str], subject: str = "Our offer") -> bytes:
    m = MimeMessage()
    m["From"] = "Sam <sam@ourco.test>"
    m["To"] = ", ".join(to)
    m["Subject"] = subject
    m["Message-ID"] = message_id
    m["Date"] = "Fri, 04 Dec 2026 10:00:00 +0000"
    m.set_content(f"Hello, see {LINK}\n")
    return m.as_bytes()


def capture(data: bytes, user) -> int:
    raw = store_raw_message(RawSpec(data=data, channel="import", user_id=user.pk), enqueue=False)
    outcome = process_raw_message(raw.pk)
    assert outcome.status == "processed", outcome
    return outcome.email_id


@pytest.fixture
def world(sender, api_client, events_buffer):
    """Sam sends one tracked mail to Ann (attributed) and one to Ann and Bea (anonymous);
    Ann opens the first twice (once through Google's image proxy) and clicks its link; the
    second is opened once. Then both mails are captured."""
    ann = make_contact(emails=("ann@client.test",))
    bea = make_contact(emails=("bea@client.test",))
    grant(ann)
    client = api_client(sender)

    def issue(message_id, recipients):
        body = {"message_id": message_id, "recipients": recipients, "links": [LINK]}
        r = client.post("/api/v1/tracking/", body, format="json").json()
        assert r["tracked"], r
        return r

    one = issue("<one@ourco.test>", ["ann@client.test"])
    many = issue("<many@ourco.test>", ["ann@client.test", "bea@client.test"])
    browser = Client(HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux) Firefox/130.0")
    proxy = Client(HTTP_USER_AGENT="Mozilla/5.0 (via ggpht.com GoogleImageProxy)")
    for c, url in (
        (browser, one["open_pixel_url"]),
        (proxy, one["open_pixel_url"]),
        (browser, one["links"][0]["tracked_url"]),
        (browser, many["open_pixel_url"]),
    ):
        assert c.get(url.removeprefix("http://testserver")).status_code in (200, 302)
    assert events_buffer.flush() == 4
    one_id = capture(sent_mail("<one@ourco.test>", ["ann@client.test"]), sender)
    many_id = capture(
        sent_mail("<many@ourco.test>", ["ann@client.test", "bea@client.test"], "Team news"), sender
    )
    return {
        "ann": ann,
        "bea": bea,
        "one": one_id,
        "many": many_id,
        "client": api_client(sender, scopes=("capture:read",)),
    }


def test_the_captured_message_shows_its_opens_and_clicks(world):
    r = world["client"].get(f"/api/v1/emails/{world['one']}/")
    assert r.status_code == 200
    t = r.json()["tracking"]
    assert (t["mode"], t["opens"], t["machine_opens"], t["clicks"], t["machine_clicks"]) == (
        "recipient",
        2,
        1,
        1,
        0,
    )
    assert t["links"] == [{"url": LINK, "clicks": 1, "machine_clicks": 0}]
    assert t["first_open_at"] and t["last_click_at"]


def test_an_untracked_message_has_no_tracking(world, sender):
    plain = capture(sent_mail("<plain@ourco.test>", ["ann@client.test"], "Plain"), sender)
    assert world["client"].get(f"/api/v1/emails/{plain}/").json()["tracking"] is None


def test_events_are_listed_by_captured_message_and_by_message_id(world):
    client = world["client"]
    r = client.get("/api/v1/tracking-events/", {"message": world["one"]})
    assert r.status_code == 200
    rows = r.json()["results"]
    assert sorted(e["kind"] for e in rows) == ["click", "open", "open"]
    assert {e["message_id"] for e in rows} == {"one@ourco.test"}
    click = next(e for e in rows if e["kind"] == "click")
    assert (click["url"], click["link"]) == (LINK, 0)
    assert [e["machine_reason"] for e in rows if e["machine"]] == ["proxy:google"]
    by_id = client.get("/api/v1/tracking-events/", {"message_id": "<many@ourco.test>"}).json()
    assert [e["kind"] for e in by_id["results"]] == ["open"]
    machine = client.get("/api/v1/tracking-events/", {"machine": "true"}).json()["results"]
    assert len(machine) == 1


def test_events_by_contact_are_those_of_mail_sent_to_them_alone(world):
    """Anonymous (several-recipient) events are attributed to nobody."""
    client = world["client"]
    ann = client.get("/api/v1/tracking-events/", {"contact": world["ann"].pk}).json()["results"]
    assert {e["message_id"] for e in ann} == {"one@ourco.test"} and len(ann) == 3
    bea = client.get("/api/v1/tracking-events/", {"contact": world["bea"].pk}).json()["results"]
    assert bea == []


def test_nobody_sees_events_of_mail_they_may_not_see(world, api_client):
    bob = make_user(email="bob@ourco.test")
    r = api_client(bob, scopes=("capture:read",)).get("/api/v1/tracking-events/")
    assert r.status_code == 200 and r.json()["results"] == []
    assert not visible_events(bob).exists()
    boss = make_user(role="admin")
    assert visible_events(boss).count() == TrackingEvent.objects.count() == 4
    detail = api_client(bob, scopes=("capture:read",)).get(f"/api/v1/emails/{world['one']}/")
    assert detail.status_code == 404


def test_the_contact_timeline_shows_the_opens_and_clicks(world):
    r = world["client"].get(f"/api/v1/contacts/{world['ann'].pk}/timeline/")
    assert r.status_code == 200, r.content
    entries = {e["email"]["id"]: e for e in r.json()["results"]}
    assert entries, "the captured mail is on Ann's timeline"
    one = entries[world["one"]]["tracking"]
    assert (one["opens"], one["clicks"]) == (2, 1)
    many = entries[world["many"]]["tracking"]
    assert (many["mode"], many["opens"]) == ("anonymous", 1)


def test_admin_pages_show_tracking(world, sender):
    admin = make_user(role="admin", is_staff=True, is_superuser=True)
    c = Client()
    c.force_login(admin)
    for url in (
        "/admin/capture/trackedmessage/",
        "/admin/capture/trackingevent/",
        "/admin/capture/trackingevent/?machine__exact=1",
    ):
        r = c.get(url)
        assert r.status_code == 200, url
    page = c.get("/admin/capture/trackedmessage/").content.decode()
    assert "one@ourco.test" in page or "Our offer" in page
    email_page = c.get(f"/admin/capture/emailmessage/{world['one']}/change/").content.decode()
    assert "2 opens (1 likely machine), 1 click" in email_page
    contact_page = c.get(f"/admin/crm/contact/{world['ann'].pk}/change/").content.decode()
    assert 'id="tracking"' in contact_page
    assert contact_page.count('class="tracking-event"') == 3
    timeline = contact_page[contact_page.index('id="timeline"') :]
    assert "2 / 1" in timeline
    event = TrackingEvent.objects.first()
    assert c.get(f"/admin/capture/trackingevent/{event.pk}/change/").status_code == 200
    tracked = event.tracked
    assert c.get(f"/admin/capture/trackedmessage/{tracked.pk}/change/").status_code == 200
