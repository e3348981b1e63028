"""GET /t/o/<token> and /t/c/<token>: a GIF or the bound redirect, one INSERT, consent
re-checked on arrival, machine opens flagged; bad tokens 404 and record nothing."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from capture.models import TrackedMessage, TrackingEvent
from capture.tracking import tokens
from capture.tracking.service import EVENTS
from capture.tracking.views import PIXEL
from tests.capture.tracking.conftest import tracking_consent, withdraw
from tests.factories import make_contact

pytestmark = pytest.mark.django_db
HUMAN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


@pytest.fixture(autouse=True)
def _no_too_soon(settings):
    """Events in these tests come right after issuance: only the test of that sign keeps it."""
    settings.MAILWARDEN_TRACKING_MACHINE_SECONDS = 0


@pytest.fixture
def issued(sender, api_client):
    """Tracking issued for one contact: (response body, contact)."""
    contact = make_contact(emails=("ann@client.test",))
    body = (
        api_client(sender)
        .post(
            "/api/v1/tracking/",
            {
                "message_id": "<m1@ourco.test>",
                "recipients": ["ann@client.test"],
                "links": ["https://example.org/offer?id=1&x=%2F", "https://example.org/two"],
            },
            format="json",
        )
        .json()
    )
    assert body["tracked"], body
    return body, contact


def path_of(url: str) -> str:
    return url.removeprefix("http://testserver")


def get(url: str, agent: str = HUMAN, **extra):
    """The request, then the buffer written (its thread is off in tests: conftest.py)."""
    r = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR="203.0.113.9").get(path_of(url), **extra)
    EVENTS.flush()
    return r


def test_the_pixel_is_a_gif_recorded_with_one_insert_and_no_session(issued, monkeypatch):
    """The request makes no query at all (no session, no user: the event goes to the buffer);
    writing the buffer is one statement, the INSERT (prepared, through psycopg directly;
    capture/tracking/service.py says why)."""
    import psycopg

    body, _ = issued
    sent = []
    real_execute = psycopg.Cursor.execute

    def spy(self, query, *args, **kwargs):
        sent.append(str(query))
        return real_execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", spy)
    with CaptureQueriesContext(connection) as queries:
        r = Client(HTTP_USER_AGENT=HUMAN).get(path_of(body["open_pixel_url"]))
    assert (queries.captured_queries, sent, len(EVENTS)) == ([], [], 1)
    with CaptureQueriesContext(connection) as queries:
        assert EVENTS.flush() == 1
    monkeypatch.undo()
    assert r.status_code == 200
    assert r["Content-Type"] == "image/gif" and r.content == PIXEL
    assert "no-store" in r["Cache-Control"]
    assert not r.cookies  # no session, no CSRF cookie
    django_sent = [q["sql"] for q in queries.captured_queries]
    if connection.vendor == "postgresql":  # prepared, through psycopg directly
        assert django_sent == []
        assert [q.split()[0] for q in sent] == ["INSERT"]
    else:  # inside the test's transaction Django wraps the write in a savepoint
        verbs = [q.split()[0] for q in django_sent]
        assert [v for v in verbs if v not in ("SAVEPOINT", "RELEASE")] == ["INSERT"]
    event = TrackingEvent.objects.get()
    assert (event.kind, event.link, event.machine, event.machine_reason) == (
        "open",
        None,
        False,
        "",
    )
    assert event.tracked.message_id == "m1@ourco.test"
    assert event.user_agent == HUMAN


def test_a_click_redirects_to_the_bound_url_only(issued):
    body, _ = issued
    link = body["links"][0]
    r = get(link["tracked_url"], data={"url": "https://evil.test/", "next": "https://evil.test/"})
    assert r.status_code == 302
    assert r["Location"] == "https://example.org/offer?id=1&x=%2F"
    assert r["Referrer-Policy"] == "no-referrer"
    event = TrackingEvent.objects.get()
    assert (event.kind, event.link) == ("click", 0)
    r = get(body["links"][1]["tracked_url"])
    assert r["Location"] == "https://example.org/two"
    assert TrackingEvent.objects.filter(kind="click", link=1).count() == 1


def flip(token: str, at: int) -> str:
    """The token with one base64 character changed."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    ch = token[at]
    return token[:at] + alphabet[(alphabet.index(ch) + 1) % 64] + token[at + 1 :]


def test_tampered_truncated_swapped_or_expired_tokens_are_404_and_record_nothing(issued):
    body, _ = issued
    pixel, click = body["open_pixel_url"], body["links"][0]["tracked_url"]
    ptoken, ctoken = pixel.rsplit("/", 1)[1], click.rsplit("/", 1)[1]
    tracked = TrackedMessage.objects.get()
    expired = tokens.make_open_token(tracked.pk, int(time.time()) - 100, int(time.time()) - 1)
    # a click token whose URL was replaced (the MAC no longer matches)
    forged = tokens.make_click_token(tracked.pk, 0, 2**32 - 1, 0, "https://example.org/offer")
    forged = forged[:-5] + ctoken[-5:]
    bad = [
        f"/t/o/{flip(ptoken, 3)}",  # the tracked id changed
        f"/t/o/{flip(ptoken, len(ptoken) - 2)}",  # the MAC changed
        f"/t/o/{ptoken[:-4]}",
        f"/t/o/{ptoken}A",
        f"/t/o/{ctoken}",  # a click token on the pixel
        f"/t/c/{ptoken}",  # a pixel token on the redirect
        f"/t/o/{expired}",
        f"/t/c/{forged}",
        f"/t/c/{flip(ctoken, 40)}",  # a character of the URL changed
        "/t/o/%00%00",
        "/t/o/" + "A" * 5000,
        "/t/c/!!!",
    ]
    for url in bad:
        r = get(url)
        assert r.status_code == 404, url
    assert not TrackingEvent.objects.exists()


def test_head_answers_without_recording_and_other_methods_are_405(issued):
    body, _ = issued
    client = Client(HTTP_USER_AGENT=HUMAN)
    assert client.head(path_of(body["open_pixel_url"])).status_code == 200
    assert client.head(path_of(body["links"][0]["tracked_url"])).status_code == 302
    assert client.post(path_of(body["open_pixel_url"])).status_code == 405
    assert not TrackingEvent.objects.exists()


def test_consent_withdrawn_since_issuance_stops_recording(issued):
    body, contact = issued
    get(body["open_pixel_url"])
    withdraw(contact)
    r = get(body["open_pixel_url"])
    assert r.status_code == 200 and r.content == PIXEL  # the reader sees nothing different
    assert get(body["links"][0]["tracked_url"]).status_code == 302
    assert TrackingEvent.objects.count() == 1


def test_tracking_refused_since_issuance_stops_recording(issued):
    body, contact = issued
    tracking_consent(contact, "refused")
    get(body["open_pixel_url"])
    assert not TrackingEvent.objects.exists()


def test_a_withdrawal_recorded_for_a_later_date_stops_recording_once_it_is_in_effect(issued):
    body, contact = issued
    withdraw(contact, effective_at=timezone.now() + timedelta(hours=1))
    get(body["open_pixel_url"])
    assert TrackingEvent.objects.count() == 1  # not in effect yet


def test_consent_of_another_contact_does_not_matter(issued):
    body, _ = issued
    withdraw(make_contact(emails=("other@client.test",)))
    get(body["open_pixel_url"])
    assert TrackingEvent.objects.count() == 1


def test_an_erased_tracked_message_records_nothing_but_still_answers(issued):
    body, _ = issued
    TrackedMessage.objects.all().delete()
    assert get(body["open_pixel_url"]).status_code == 200
    assert get(body["links"][0]["tracked_url"]).status_code == 302
    assert not TrackingEvent.objects.exists()


@pytest.mark.parametrize(
    ("agent", "reason"),
    [
        ("Mozilla/5.0", "proxy:apple"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)", "proxy:apple"),
        ("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", "proxy:google"),
        ("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html", "proxy:yahoo"),
        ("Barracuda Sentinel (EE)", "scanner:barracuda"),
        ("Mozilla/5.0 Mimecast URL protect", "scanner:mimecast"),
        ("Proofpoint URL Defense", "scanner:proofpoint"),
        ("Microsoft Office Existence Discovery", "scanner:microsoft"),
        ("Mozilla/5.0 (compatible; BingPreview/1.0b)", "scanner:microsoft"),
        ("python-requests/2.32", "bot"),
        ("Slackbot-LinkExpanding 1.0", "bot"),
        ("", "no_user_agent"),
    ],
)  # fmt: skip
def test_proxies_and_scanners_are_flagged_by_user_agent(issued, agent, reason):
    body, _ = issued
    get(body["open_pixel_url"], agent=agent)
    get(body["links"][0]["tracked_url"], agent=agent)
    assert set(TrackingEvent.objects.values_list("machine", "machine_reason")) == {(True, reason)}


def test_a_nul_in_the_user_agent_is_dropped_not_a_failed_batch(issued):
    body, _ = issued
    get(body["open_pixel_url"], agent="Thunder\x00bird/128.0")
    get(body["open_pixel_url"])
    assert list(TrackingEvent.objects.order_by("id").values_list("user_agent", flat=True)) == [
        "Thunderbird/128.0",
        HUMAN,
    ]


def test_a_real_mail_client_is_not_flagged():
    from capture.tracking.machine import agent_reason

    for agent in (
        HUMAN,
        "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        "Thunderbird/128.0",
    ):
        assert agent_reason(agent) == "", agent


def test_the_configured_networks_are_flagged(issued, settings):
    body, _ = issued
    settings.MAILWARDEN_TRACKING_MACHINE_NETWORKS = ["203.0.113.0/24", "2001:db8::/32"]
    get(body["open_pixel_url"])
    Client(HTTP_USER_AGENT=HUMAN, REMOTE_ADDR="2001:db8::5").get(path_of(body["open_pixel_url"]))
    settings.MAILWARDEN_TRACKING_MACHINE_NETWORKS = []
    get(body["open_pixel_url"])
    assert list(TrackingEvent.objects.order_by("id").values_list("machine_reason", flat=True)) == [
        "network",
        "network",
        "",
    ]


def test_opens_within_seconds_of_issuance_are_flagged(issued, settings):
    body, _ = issued
    settings.MAILWARDEN_TRACKING_MACHINE_SECONDS = 3600
    get(body["open_pixel_url"])
    settings.MAILWARDEN_TRACKING_MACHINE_SECONDS = 0
    get(body["open_pixel_url"])
    assert list(TrackingEvent.objects.order_by("id").values_list("machine_reason", flat=True)) == [
        "too_soon",
        "",
    ]


@pytest.mark.postgres  # SQLite reports a missing table as OperationalError: "out of reach"
def test_a_failing_record_step_still_answers(issued, monkeypatch):
    """The database refusing the INSERT (here: the table gone in this transaction) is logged;
    the reader still gets the GIF and the redirect, and that batch is dropped, not retried for
    ever ahead of the next ones (a database out of reach keeps them: test_buffer.py).
    tests/capture/tracking/test_real_server.py runs with the database really down."""
    body, _ = issued
    from django.db import transaction

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {TrackingEvent._meta.db_table} RENAME TO gone")
        r = get(body["open_pixel_url"])
        assert r.status_code == 200 and r.content == PIXEL
        assert len(EVENTS) == 0
        # the failed statement aborted this transaction: leave it by rolling back
        transaction.set_rollback(True)


def test_an_anonymous_mail_stops_recording_when_any_of_its_recipients_withdraws(sender, api_client):
    """Events of a several-recipient mail name nobody, so any tracked recipient's withdrawal
    may concern them: none is recorded after it."""
    ann = make_contact(emails=("ann@client.test",))
    make_contact(emails=("bea@client.test",))
    body = (
        api_client(sender)
        .post(
            "/api/v1/tracking/",
            {"message_id": "<m2@ourco.test>", "recipients": ["ann@client.test", "bea@client.test"]},
            format="json",
        )
        .json()
    )
    assert body["mode"] == "anonymous"
    get(body["open_pixel_url"])
    withdraw(ann)
    get(body["open_pixel_url"])
    assert TrackingEvent.objects.count() == 1


@pytest.mark.postgres
def test_the_insert_is_prepared_once_per_connection(issued, settings):
    """Planning the statement costs PostgreSQL more than running it: it is prepared."""
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    body, _ = issued
    for _ in range(3):
        get(body["open_pixel_url"])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            [f"INSERT INTO {TrackingEvent._meta.db_table}%"],
        )
        assert cursor.fetchone()[0] == 1
    assert TrackingEvent.objects.count() == 3
