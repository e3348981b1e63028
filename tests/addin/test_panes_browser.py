"""The panes in a real Chromium against the live server. Outlook cannot run here, so a small
stand-in for the Office host object (office_standin.js, in place of office.js) serves fixture
mail; everything else is real: the pages, their scripts, the API, the database."""

from __future__ import annotations

import base64
import re

import pytest
from django.urls import NoReverseMatch, Resolver404, resolve

from capture.models import (
    Attachment,
    CaptureAddress,
    Category,
    EmailMessage,
    Meeting,
    ThreadLink,
    ThreadUnlink,
)
from crm.models import ApiToken, Contact
from governance.models import OrgSettings
from tests.addin.conftest import addin_token, fixture_mail, open_pane
from tests.factories import (
    make_contact,
    make_item,
    make_never_log_rule,
    make_organization,
    make_user,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TIMEOUT = 20_000  # ms; a bound on waiting, never an assertion about speed


def seller():
    return make_user(
        username="seller", email="seller@ours.example", password="pw-seller-long-enough"
    )


def read_fixture(mime: bytes, **extra) -> dict:
    fixture = {
        "kind": "message",
        "internetMessageId": "<order-1@acme-tools.example>",
        "subject": "Order for the spring range",
        "from": {"emailAddress": "ada@acme-tools.example", "displayName": "Ada Buyer"},
        "to": [{"emailAddress": "seller@ours.example", "displayName": "Seller"}],
        "cc": [
            {"emailAddress": "kim@shared.example", "displayName": "Kim"},
            {"emailAddress": "new.person@fresh-co.example", "displayName": "New Person"},
        ],
        "attachments": [
            {"id": "a1", "name": "order.pdf", "isInline": False, "size": 14},
            {"id": "a2", "name": "terms.txt", "isInline": False, "size": 5},
            {"id": "a3", "name": "logo.png", "isInline": True, "size": 5},
        ],
        "date": "2026-12-01T10:00:00Z",
        "body": "Hello, please find our order attached.",
        "mime": base64.b64encode(mime).decode(),
    }
    fixture.update(extra)
    return fixture


def the_mail() -> bytes:
    return fixture_mail(
        cc="Kim <kim@shared.example>, New Person <new.person@fresh-co.example>",
        attachments=(("order.pdf", b"%PDF-1.4 order"), ("terms.txt", b"terms")),
    )


def test_the_pane_signs_in_by_device_code_and_signs_out(live_server, browser):
    user = seller()
    page = open_pane(browser, f"{live_server.url}/addin/read/", fixture=read_fixture(the_mail()))
    page.wait_for_selector("#sign-in", state="visible", timeout=TIMEOUT)
    page.click("#sign-in")
    page.wait_for_function("document.getElementById('user-code').textContent.length === 9")
    code = page.text_content("#user-code")
    opened = page.evaluate("window.__MW_CALLS__.filter(c => c[0] === 'openBrowserWindow')")
    assert opened and opened[0][1].endswith(f"/addin/activate/?code={code}")

    approver = browser.new_page()  # the user's own browser, signed in to Mailwarden
    approver.goto(opened[0][1])
    approver.fill("#id_username", "seller")
    approver.fill("#id_password", "pw-seller-long-enough")
    approver.click("#login")
    approver.wait_for_selector("#approve", timeout=TIMEOUT)
    assert approver.input_value("#id_code") == code
    approver.click("#approve")
    approver.wait_for_selector("#result", timeout=TIMEOUT)

    page.wait_for_selector("#pane", state="visible", timeout=TIMEOUT)
    page.wait_for_selector("[data-address='ada@acme-tools.example']", timeout=TIMEOUT)
    secret = page.evaluate("localStorage.getItem('mailwarden.addin.token')")
    token = ApiToken.objects.get(prefix=secret[:10])
    assert token.user == user and token.revoked_at is None

    page.click("#sign-out")
    page.wait_for_selector("#signin", state="visible", timeout=TIMEOUT)
    assert page.evaluate("localStorage.getItem('mailwarden.addin.token')") is None
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_read_pane_matches_people_creates_picks_and_saves_with_the_choices(live_server, browser):
    user = seller()
    acme = make_organization(name="Acme Tools", domains=("acme-tools.example",))
    ada = make_contact(
        first_name="Ada", last_name="Buyer", emails=("ada@acme-tools.example",), organization=acme
    )
    make_contact(first_name="Kim", last_name="One", emails=("kim@shared.example",))
    kim2 = make_contact(first_name="Kim", last_name="Two", emails=("kim@shared.example",))
    deal = make_item(title="Spring range order", contacts=(ada,), organization=acme)
    Category.objects.create(name="Order")
    Category.objects.create(name="Complaint")
    token = addin_token(user)
    url = f"{live_server.url}/addin/read/"
    page = open_pane(browser, url, fixture=read_fixture(the_mail()), token=token)
    page.wait_for_selector("[data-address='ada@acme-tools.example']", timeout=TIMEOUT)

    assert page.get_attribute("[data-address='ada@acme-tools.example']", "data-match") == "one"
    assert "Ada Buyer · Acme Tools" in page.text_content("[data-address='ada@acme-tools.example']")
    assert page.get_attribute("[data-address='kim@shared.example']", "data-match") == "several"
    fresh = "[data-address='new.person@fresh-co.example']"
    assert page.get_attribute(fresh, "data-match") == "none"
    assert "new organization Fresh Co" in page.text_content(fresh)
    # the suggestion says why
    assert "participants" in page.text_content("#suggestions")
    # inline parts are never offered
    assert page.locator("[data-attachment]").count() == 2

    page.click("[data-create='new.person@fresh-co.example']")
    page.wait_for_selector(f"{fresh}[data-match='one']", timeout=TIMEOUT)
    created = Contact.objects.get(emails__address="new.person@fresh-co.example")
    assert created.organization.name == "Fresh Co" and created.owner == user

    page.select_option("[data-pick='kim@shared.example']", str(kim2.pk))
    page.check(f"[data-item='{deal.pk}']")
    page.check("[data-category='Order']")
    page.uncheck("[data-attachment='order.pdf']")
    page.click("#save")
    page.wait_for_selector("#saved", state="visible", timeout=TIMEOUT)
    page.wait_for_function("document.getElementById('status').textContent === 'Saved.'")

    email = EmailMessage.objects.get()
    assert email.categories == ["Order"]
    links = ThreadLink.objects.filter(thread=email.thread)
    assert links.filter(item=deal, source=ThreadLink.Source.ADDIN).exists()
    assert links.filter(contact=kim2).exists()
    kept = dict(Attachment.objects.filter(email=email).values_list("filename", "dropped"))
    assert kept == {
        "order.pdf": Attachment.Dropped.NOT_SELECTED,
        "terms.txt": Attachment.Dropped.KEPT,
    }
    shown = page.text_content(f"[data-link='item:{deal.pk}']")
    assert "Spring range order" in shown and "chosen in the add-in" in shown
    assert page.is_checked("[data-category='Order']")

    # Saving again from another record adds the link; it is still one message.
    autumn = make_item(title="Autumn range", contacts=(ada,))
    page.reload()
    page.wait_for_selector(f"[data-item='{autumn.pk}']", timeout=TIMEOUT)
    assert page.is_disabled(f"[data-item='{deal.pk}']")  # linked already
    page.check(f"[data-item='{autumn.pk}']")
    page.click("#save")
    page.wait_for_selector(f"[data-link='item:{autumn.pk}']", timeout=TIMEOUT)
    assert EmailMessage.objects.count() == 1
    assert {deal.pk, autumn.pk} <= set(
        ThreadLink.objects.filter(thread=email.thread).values_list("item", flat=True)
    )

    # Change links and categories of the saved mail.
    page.click(f"[data-unlink='item:{deal.pk}']")
    page.wait_for_selector(f"[data-link='item:{deal.pk}']", state="detached", timeout=TIMEOUT)
    assert not ThreadLink.objects.filter(thread=email.thread, item=deal).exists()
    assert ThreadUnlink.objects.filter(thread=email.thread, item=deal).exists()
    page.check("[data-category='Complaint']")
    page.click("#save-categories")
    page.wait_for_function("document.getElementById('status').textContent === 'Categories saved.'")
    email.refresh_from_db()
    assert sorted(email.categories) == ["Complaint", "Order"]


def appointment_fixture(**extra) -> dict:
    fixture = {
        "kind": "appointment",
        "itemId": "AAMkAD-weekly-review",
        "subject": "Weekly pipeline review",
        "start": "2026-12-07T09:00:00Z",
        "end": "2026-12-07T09:30:00Z",
        "location": "Room 4",
        "organizer": {"emailAddress": "seller@ours.example", "displayName": "Seller"},
        "requiredAttendees": [{"emailAddress": "ada@acme-tools.example", "displayName": "Ada"}],
        "recurrence": {
            "recurrenceType": "weekly",
            "recurrenceProperties": {"interval": 1, "days": ["mon"]},
            "seriesTime": {"endYear": 2027, "endMonth": 1, "endDay": 31},
        },
        "modified": "2026-12-01T08:00:00Z",
    }
    fixture.update(extra)
    return fixture


def test_an_appointment_is_saved_with_its_recurrence_and_a_change_updates_it(live_server, browser):
    user = seller()
    ada = make_contact(first_name="Ada", last_name="Buyer", emails=("ada@acme-tools.example",))
    token = addin_token(user)
    url = f"{live_server.url}/addin/read/"
    page = open_pane(browser, url, fixture=appointment_fixture(), token=token)
    page.wait_for_selector("#meeting", state="visible", timeout=TIMEOUT)
    page.click("#save")
    page.wait_for_function(
        "document.getElementById('meeting-info').textContent.startsWith('Saved meeting')",
        timeout=TIMEOUT,
    )
    meeting = Meeting.objects.get()
    assert meeting.uid == "outlook-AAMkAD-weekly-review"
    assert meeting.rrule == "FREQ=WEEKLY;UNTIL=20270131T235959Z;BYDAY=MO"
    timeline = ada.pk  # the meeting is on the contact's timeline (through its participant)
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    entries = api.get(f"/api/v1/contacts/{timeline}/timeline/").json()["results"]
    assert [e["meeting"]["summary"] for e in entries if e["meeting"]] == ["Weekly pipeline review"]

    moved = appointment_fixture(
        start="2026-12-08T14:00:00Z", end="2026-12-08T15:00:00Z", modified="2026-12-02T08:00:00Z"
    )
    page2 = open_pane(browser, url, fixture=moved, token=token)
    page2.wait_for_selector("#meeting", state="visible", timeout=TIMEOUT)
    page2.click("#save")
    page2.wait_for_function(
        "document.getElementById('status').textContent === 'Saved.'", timeout=TIMEOUT
    )
    meeting.refresh_from_db()
    assert meeting.start.isoformat() == "2026-12-08T14:00:00+00:00"
    assert Meeting.objects.count() == 1


def _route_exists(path: str) -> bool:
    try:
        resolve(path)
    except (Resolver404, NoReverseMatch):
        return False
    return True


def test_compose_pane_sets_log_and_track_from_the_defaults_and_logs_by_bcc(live_server, browser):
    user = seller()
    make_contact(emails=("ada@acme-tools.example",))
    make_never_log_rule("never.example")
    org = OrgSettings.load()
    org.log_all_by_default, org.enforce_log_all = True, True
    org.track_by_default, org.enforce_track = False, False
    org.save()
    token = addin_token(user)
    fixture = {
        "kind": "compose",
        "sender": "seller@ours.example",
        "to": [{"emailAddress": "ada@acme-tools.example", "displayName": "Ada"}],
        "cc": [{"emailAddress": "boss@never.example", "displayName": "Boss"}],
        "bcc": [],
        "html": '<p>See <a href="https://example.org/offer">the offer</a></p>',
    }
    page = open_pane(browser, f"{live_server.url}/addin/compose/", fixture=fixture, token=token)
    page.wait_for_selector("#pane", state="visible", timeout=TIMEOUT)
    assert page.is_checked("#log") and page.is_disabled("#log")
    assert page.is_visible("#log-locked")
    assert not page.is_checked("#track") and page.is_enabled("#track")

    page.wait_for_function("window.__MW_CALLS__.some(c => c[0] === 'bcc.add')", timeout=TIMEOUT)
    capture = CaptureAddress.objects.get(user=user)
    added = page.evaluate("window.__MW_CALLS__.filter(c => c[0] === 'bcc.add')[0][1]")
    assert [r["emailAddress"] for r in added] == [capture.address]

    if _route_exists("/api/v1/compose/check"):
        page.wait_for_selector("[data-recipient='boss@never.example']", timeout=TIMEOUT)
        row = page.locator("[data-recipient='boss@never.example']")
        assert row.get_attribute("class") == "disabled"
        assert "never-log" in page.text_content("[data-log-reason='boss@never.example']")
        assert page.is_checked("[data-log='ada@acme-tools.example']")
        assert not page.is_checked("[data-log='boss@never.example']")
    else:  # the compose check is not merged on this branch: the pane says so
        page.wait_for_selector("#check-unavailable", state="visible", timeout=TIMEOUT)
        assert "no compose check" in page.text_content("#check-unavailable")


def test_compose_pane_tracks_through_the_tracking_api_when_the_org_enforces_it(
    live_server, browser
):
    from capture.models import TrackedMessage

    user = seller()
    make_contact(emails=("ada@acme-tools.example",))
    org = OrgSettings.load()
    org.log_all_by_default, org.enforce_log_all = False, False
    org.track_by_default, org.enforce_track = True, True
    org.save()
    fixture = {
        "kind": "compose",
        "sender": "seller@ours.example",
        "to": [{"emailAddress": "ada@acme-tools.example", "displayName": "Ada"}],
        "cc": [],
        "bcc": [],
        "html": '<p>See <a href="https://example.org/offer">the offer</a></p>',
    }
    url = f"{live_server.url}/addin/compose/"
    page = open_pane(browser, url, fixture=fixture, token=addin_token(user))
    page.wait_for_selector("#pane", state="visible", timeout=TIMEOUT)
    assert page.is_checked("#track") and page.is_disabled("#track")
    assert not page.is_checked("#log") and page.is_enabled("#log")
    page.wait_for_function(
        "window.__MW_CALLS__.some(c => c[0] === 'body.set' && c[1].includes('data-mailwarden-pixel'))",
        timeout=TIMEOUT,
    )
    html = page.evaluate("window.__MW_CALLS__.filter(c => c[0] === 'body.set').pop()[1]")
    tracked = TrackedMessage.objects.get()
    assert tracked.sender == user and tracked.links == ["https://example.org/offer"]
    link = re.search(r'<a href="([^"]+)"', html).group(1)
    assert link.startswith(live_server.url) and link != "https://example.org/offer"
    assert 'data-mailwarden-href="https://example.org/offer"' in html  # to undo it
    pixel = re.search(r'<img src="([^"]+)"', html).group(1)
    assert pixel.startswith(live_server.url)
    assert page.is_checked("[data-track='ada@acme-tools.example']")
    # nothing logged: no BCC was added
    assert not page.evaluate("window.__MW_CALLS__.some(c => c[0] === 'bcc.add')")


RECURRENCES = [
    ({"recurrenceType": "daily", "recurrenceProperties": {"interval": 2},
      "seriesTime": {"endYear": 2027, "endMonth": 3, "endDay": 9}},
     "FREQ=DAILY;INTERVAL=2;UNTIL=20270309T235959Z"),
    ({"recurrenceType": "weekday", "numberOfOccurrences": 10}, "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;COUNT=10"),
    ({"recurrenceType": "weekly", "recurrenceProperties": {"interval": 1, "days": ["tue", "thu"]}},
     "FREQ=WEEKLY;BYDAY=TU,TH"),
    ({"recurrenceType": "monthly", "recurrenceProperties": {"interval": 1, "dayOfMonth": 15}},
     "FREQ=MONTHLY;BYMONTHDAY=15"),
    ({"recurrenceType": "monthly", "recurrenceProperties": {"interval": 3, "dayOfWeek": "fri", "weekNumber": "last"}},
     "FREQ=MONTHLY;INTERVAL=3;BYDAY=-1FR"),
    ({"recurrenceType": "yearly", "recurrenceProperties": {"interval": 1, "month": "mar", "dayOfMonth": 1}},
     "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=1"),
    (None, ""),
]  # fmt: skip


def test_the_panes_recurrence_to_rrule_gives_rules_the_server_accepts(live_server, browser):
    from capture.addin.appointments import parse_rrule

    page = open_pane(browser, f"{live_server.url}/addin/read/", fixture=appointment_fixture())
    page.wait_for_selector("#sign-in", state="visible", timeout=TIMEOUT)
    for recurrence, expected in RECURRENCES:
        rule = page.evaluate("r => window.MailwardenRead.recurrenceToRRule(r)", recurrence)
        assert rule == expected, recurrence
        if rule:
            assert parse_rrule(rule)["FREQ"]


def test_a_saved_mail_with_an_open_review_offers_the_ranked_candidates_and_links_one(
    live_server, browser
):
    from datetime import UTC, datetime

    from capture.models import LinkRule, ReviewItem
    from crm.models import Item

    user = seller()
    ada = make_contact(first_name="Ada", last_name="Buyer", emails=("ada@acme-tools.example",))
    spring = make_item(title="Spring range order", contacts=(ada,))
    summer = make_item(title="Summer range order", contacts=(ada,))
    # both existed before the mail (no retroactive linking otherwise)
    Item.objects.filter(pk__in=[spring.pk, summer.pk]).update(
        created=datetime(2026, 11, 1, tzinfo=UTC)
    )
    LinkRule.objects.create(kind="deal", strategy="single_open")
    mail = fixture_mail(attachments=())
    page = open_pane(
        browser,
        f"{live_server.url}/addin/read/",
        fixture=read_fixture(mail, cc=[], attachments=[]),
        token=addin_token(user),
    )
    page.wait_for_selector(f"[data-item='{spring.pk}']", timeout=TIMEOUT)
    assert not page.is_checked(f"[data-item='{spring.pk}']")  # a review, not a rule's link
    page.click("#save")  # without choosing: the rule asks for review
    page.wait_for_selector("[data-review]", timeout=TIMEOUT)
    review = ReviewItem.objects.get(status=ReviewItem.Status.OPEN)
    text = page.text_content(f"[data-review='{review.pk}']")
    assert "Spring range order" in text and "Summer range order" in text
    assert "participants" in text  # each candidate with its why
    page.click(f"[data-resolve='{review.pk}:{summer.pk}']")
    page.wait_for_selector(f"[data-link='item:{summer.pk}']", timeout=TIMEOUT)
    review.refresh_from_db()
    assert review.status == ReviewItem.Status.RESOLVED
    assert ThreadLink.objects.filter(item=summer).exists()
    assert not ThreadLink.objects.filter(item=spring).exists()


def test_the_private_box_saves_the_mail_with_the_private_flag(live_server, browser):
    from capture.models import RawMessage

    user = seller()
    make_contact(emails=("ada@acme-tools.example",))
    mail = fixture_mail(attachments=())
    fixture = read_fixture(mail, cc=[], attachments=[])
    page = open_pane(
        browser, f"{live_server.url}/addin/read/", fixture=fixture, token=addin_token(user)
    )
    page.wait_for_selector("#private", state="visible", timeout=TIMEOUT)
    page.check("#private")
    page.click("#save")
    page.wait_for_function(
        "document.getElementById('status').textContent.startsWith('Saved')"
        " || document.getElementById('status').className === 'error'",
        timeout=TIMEOUT,
    )
    raw = RawMessage.objects.get()
    assert raw.options.get("private") is True and raw.channel == "addin"
