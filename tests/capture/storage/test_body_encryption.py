"""Bodies and headers encrypted in the database (MAILWARDEN_ENCRYPT_BODIES, capture/bodycrypt.py):
a database dump holds no body text, every reader still gets it, rotation re-wraps the body key
without rewriting a body, a destroyed body key leaves bodies unreadable, search never matches
bodies, rows written before the setting keep reading."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.urls import reverse
from rest_framework.test import APIClient

from capture import bodycrypt, storage
from capture.admin.messages import EmailMessageAdmin
from capture.intake import RawSpec, store_raw_message
from capture.models import DataKey, EmailMessage
from capture.pipeline import process_raw_messages
from crm.models import ApiToken
from governance import crypto
from tests.capture.dsr.test_no_trace import database_dump
from tests.factories import make_user
from tests.filestore import TEST_MASTER_KEYS

FIXTURES = ["nested_multipart.eml", "multipart_alternative.eml", "calendar_invite.eml"]
WINDOW = 16
NEW_KEY = "a brand new master key for the body tests"


@pytest.fixture
def bodies_encrypted(settings):
    storage.reset_caches()
    settings.MAILWARDEN_MASTER_KEYS = TEST_MASTER_KEYS
    settings.MAILWARDEN_ENCRYPT_BODIES = True
    yield settings
    storage.reset_caches()


def _capture(mail_fixture, names=FIXTURES, user=None) -> list[EmailMessage]:
    user = user or make_user()
    raws = [
        store_raw_message(
            RawSpec(data=mail_fixture(n), channel="import", user_id=user.pk), enqueue=False
        )
        for n in names
    ]
    outcomes = process_raw_messages([r.pk for r in raws])
    assert {o.status for o in outcomes} == {"processed"}
    return list(EmailMessage.objects.filter(first_raw__in=raws).order_by("pk"))


def _stored(pk: int) -> tuple[str, str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT text_body, html_body, CAST(headers AS text) FROM capture_emailmessage WHERE id = %s",
            [pk],
        )
        return cursor.fetchone()


def _body_windows(emails: list[EmailMessage]) -> set[str]:
    """16-character runs of the bodies' prose, minus
    runs that also occur in the metadata stored in clear (subject, addresses, names,
    attachment names and content ids)."""
    clear = " ".join(
        [
            *(e.subject for e in emails),
            *(e.from_address for e in emails),
            *(e.from_name for e in emails),
            *(e.message_id for e in emails),
            *(p.address for e in emails for p in e.participants.all()),
            *(p.name for e in emails for p in e.participants.all()),
            *(a.filename for e in emails for a in e.attachments.all()),
            *(a.content_id for e in emails for a in e.attachments.all()),  # cid: in the HTML
        ]
    ).lower()
    runs = set()
    for e in emails:
        # prose only: markup, addresses and links are split off (a dump's COPY escapes
        # control characters, and addresses are stored in clear elsewhere anyway)
        for line in re.split(r"[^A-Za-z0-9 ,.!?']", f"{e.text_body}\n{e.html_body}"):
            for i in range(0, len(line) - WINDOW + 1):
                run = line[i : i + WINDOW].lower()
                if run.strip() and run not in clear:
                    runs.add(run)
    return runs


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@pytest.mark.parametrize("encrypted", [True, False], ids=["bodies-encrypted", "control"])
def test_a_database_dump_holds_no_plaintext_run_of_a_body(settings, mail_fixture, encrypted):
    if connection.vendor != "postgresql":
        pytest.skip("the database dump needs PostgreSQL")
    storage.reset_caches()
    settings.MAILWARDEN_MASTER_KEYS = TEST_MASTER_KEYS
    settings.MAILWARDEN_ENCRYPT_BODIES = encrypted
    emails = _capture(mail_fixture)
    runs = _body_windows(emails)
    assert len(runs) >= 20
    dump = database_dump().decode("utf-8", "replace").lower()
    leaked = {r for r in runs if r in dump}
    if encrypted:
        assert leaked == set()
        assert all(_stored(e.pk)[0].startswith(bodycrypt.SEALED) for e in emails if e.text_body)
        assert all(_stored(e.pk)[2].startswith(f'"{bodycrypt.SEALED}') for e in emails)
    else:  # the check finds body text where it is stored in clear
        assert len(leaked) > len(runs) // 2
    storage.reset_caches()


@pytest.mark.django_db
def test_every_reader_gets_the_plain_body_back(bodies_encrypted, mail_fixture):
    (email,) = _capture(mail_fixture, ["multipart_alternative.eml"])
    text, html, _ = _stored(email.pk)
    assert text.startswith(bodycrypt.SEALED) and html.startswith(bodycrypt.SEALED)
    fresh = EmailMessage.objects.get(pk=email.pk)
    assert fresh.text_body and fresh.text_body not in text
    assert fresh.html_body.lower().lstrip().startswith("<")
    assert isinstance(fresh.headers, list) and fresh.headers
    values = EmailMessage.objects.filter(pk=email.pk).values("text_body", "html_body", "headers")
    assert values.get() == {
        "text_body": fresh.text_body,
        "html_body": fresh.html_body,
        "headers": fresh.headers,
    }
    only = EmailMessage.objects.only("text_body").get(pk=email.pk)
    assert only.text_body == fresh.text_body
    # a rewrite (as DSR erasure does) is sealed again, under a fresh data key
    fresh.text_body = fresh.text_body.replace(fresh.text_body[:5], "XXXXX")
    fresh.save(update_fields=["text_body"])
    assert _stored(email.pk)[0] != text
    assert _stored(email.pk)[0].startswith(bodycrypt.SEALED)
    assert EmailMessage.objects.get(pk=email.pk).text_body.startswith("XXXXX")
    # the API's detail (a body reader) and the admin viewer see plain text
    user = EmailMessage.objects.get(pk=email.pk).captures.first().user
    _, key = ApiToken.issue(user=user, name="t", scopes=["capture:read"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    data = api.get(f"/api/v1/emails/{email.pk}/").json()
    assert data["text_body"].startswith("XXXXX")
    assert bodycrypt.SEALED not in str(data)


@pytest.mark.django_db
def test_rows_written_before_the_setting_keep_reading_and_vice_versa(settings, mail_fixture):
    storage.reset_caches()
    settings.MAILWARDEN_MASTER_KEYS = TEST_MASTER_KEYS
    (plain,) = _capture(mail_fixture, ["multipart_alternative.eml"])
    assert not _stored(plain.pk)[0].startswith(bodycrypt.PREFIXES)
    settings.MAILWARDEN_ENCRYPT_BODIES = True
    (sealed,) = _capture(mail_fixture, ["nested_multipart.eml"])
    assert _stored(sealed.pk)[0].startswith(bodycrypt.SEALED)
    assert EmailMessage.objects.get(pk=plain.pk).text_body == plain.text_body
    settings.MAILWARDEN_ENCRYPT_BODIES = False
    assert EmailMessage.objects.get(pk=sealed.pk).text_body == sealed.text_body
    # plain text that looks like a sealed value is escaped, not mistaken for ciphertext
    EmailMessage.objects.filter(pk=plain.pk).update(text_body=f"{bodycrypt.SEALED}abc:def")
    assert _stored(plain.pk)[0] == f"{bodycrypt.ESCAPED}{bodycrypt.SEALED}abc:def"
    assert EmailMessage.objects.get(pk=plain.pk).text_body == f"{bodycrypt.SEALED}abc:def"
    storage.reset_caches()


@pytest.mark.django_db
def test_rotate_keys_rewraps_the_body_key_without_rewriting_a_body(bodies_encrypted, mail_fixture):
    emails = _capture(mail_fixture)
    before = {e.pk: _stored(e.pk) for e in emails}
    plain = {e.pk: (e.text_body, e.html_body, e.headers) for e in emails}
    old_newest = crypto.keyring().newest.key_id
    assert DataKey.objects.get(name=bodycrypt.BODY_KEY).key_id == old_newest

    bodies_encrypted.MAILWARDEN_MASTER_KEYS = [NEW_KEY, *TEST_MASTER_KEYS]
    out = io.StringIO()
    call_command("rotate_keys", no_progress=True, stdout=out)
    assert "body key under the newest master key (no body was rewritten)" in out.getvalue()
    newest = crypto.keyring().newest.key_id
    assert newest != old_newest
    assert DataKey.objects.get(name=bodycrypt.BODY_KEY).key_id == newest
    assert {e.pk: _stored(e.pk) for e in emails} == before  # no body rewritten

    bodies_encrypted.MAILWARDEN_MASTER_KEYS = [NEW_KEY]  # the old keys are gone
    storage.reset_caches()
    for pk, (text, html, headers) in plain.items():
        e = EmailMessage.objects.get(pk=pk)
        assert (e.text_body, e.html_body, e.headers) == (text, html, headers)


@pytest.mark.django_db
def test_a_destroyed_body_key_leaves_bodies_unreadable_even_with_the_master_keys(
    bodies_encrypted, mail_fixture
):
    (email,) = _capture(mail_fixture, ["multipart_alternative.eml"])
    assert email.text_body
    stored_text = _stored(email.pk)[0]
    assert bodycrypt.destroy_body_key()
    assert not DataKey.objects.filter(name=bodycrypt.BODY_KEY).exists()
    with pytest.raises(bodycrypt.BodyUnreadable):
        bodycrypt.open_sealed(stored_text)
    gone = EmailMessage.objects.get(pk=email.pk)
    assert gone.text_body == bodycrypt.UNREADABLE and gone.headers == []
    # new mail gets a new body key and reads
    (other,) = _capture(mail_fixture, ["nested_multipart.eml"])
    assert EmailMessage.objects.get(pk=other.pk).text_body == other.text_body != ""
    with pytest.raises(bodycrypt.BodyUnreadable):  # the new key does not open the old body
        bodycrypt.open_sealed(stored_text)


@pytest.mark.django_db
def test_a_deleted_message_takes_its_data_key_with_it(bodies_encrypted, mail_fixture):
    """The per-value data key is HMAC(body key, salt) with the salt in the row: deleting the
    row (removal.delete_messages, purge) leaves no key behind — only the shared body key."""
    from capture.removal import delete_messages

    emails = _capture(mail_fixture)
    keys_before = set(DataKey.objects.values_list("name", flat=True))
    assert bodycrypt.BODY_KEY in keys_before
    assert not any(n.startswith("body/") for n in keys_before)
    delete_messages([emails[0].pk])
    assert not EmailMessage.objects.filter(pk=emails[0].pk).exists()
    assert DataKey.objects.filter(name=bodycrypt.BODY_KEY).exists()
    assert EmailMessage.objects.get(pk=emails[1].pk).text_body == emails[1].text_body


@pytest.mark.django_db
def test_search_never_matches_bodies_and_says_so(bodies_encrypted, mail_fixture):
    admin = make_user(role="compliance", is_staff=True, is_superuser=True)
    (email,) = _capture(mail_fixture, ["multipart_alternative.eml"], user=admin)
    words = [w for w in re.findall(r"[A-Za-z]{6,}", email.text_body)]
    body_only = next(w for w in words if w.lower() not in email.subject.lower())
    subject_word = re.findall(r"[A-Za-z]{4,}", email.subject)[0]
    _, key = ApiToken.issue(user=admin, name="t", scopes=["capture:read"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get(f"/api/v1/emails/?search={body_only}").json()["results"] == []
    hits = api.get(f"/api/v1/emails/?search={subject_word}").json()["results"]
    assert [h["id"] for h in hits] == [email.pk]
    # the admin's search: same
    from django.test import Client

    web = Client()
    web.force_login(admin)
    url = reverse("admin:capture_emailmessage_changelist")
    page = web.get(url, {"q": body_only})
    assert page.status_code == 200
    assert page.context["cl"].result_count == 0
    assert web.get(url, {"q": subject_word}).context["cl"].result_count == 1
    assert "bodies are not searched" in page.content.decode()
    assert "not searched" in EmailMessageAdmin.search_help_text
    schema = api.get("/api/schema/").content.decode()
    assert "Message bodies are never searched" in schema


@pytest.mark.django_db
def test_a_body_key_made_in_a_rolled_back_transaction_is_not_used_afterwards(bodies_encrypted):
    with pytest.raises(RuntimeError), transaction.atomic():
        assert bodycrypt.open_sealed(bodycrypt.seal("first")) == "first"
        raise RuntimeError
    assert not DataKey.objects.filter(name=bodycrypt.BODY_KEY).exists()
    sealed = bodycrypt.seal("second")
    storage.reset_caches()  # what another process (or this one a minute later) sees
    assert bodycrypt.open_sealed(sealed) == "second"


@pytest.mark.django_db
def test_bulk_update_and_queryset_update_seal_too(bodies_encrypted, mail_fixture):
    """The retention purge's anonymisation rewrites bodies with bulk_update, its redaction
    with update(): both go through the field."""
    emails = _capture(mail_fixture, ["multipart_alternative.eml", "nested_multipart.eml"])
    for e in emails:
        e.text_body = f"anonymised {e.pk}"
        e.headers = [["Subject", f"anonymised {e.pk}"]]
    EmailMessage.objects.bulk_update(emails, ["text_body", "headers"])
    EmailMessage.objects.filter(pk=emails[0].pk).update(html_body="<p>redacted</p>")
    for e in emails:
        text, html, headers = _stored(e.pk)
        assert text.startswith(bodycrypt.SEALED) and headers.startswith(f'"{bodycrypt.SEALED}')
        assert "anonymised" not in text + headers and "redacted" not in html
        fresh = EmailMessage.objects.get(pk=e.pk)
        assert fresh.text_body == f"anonymised {e.pk}"
        assert fresh.headers == [["Subject", f"anonymised {e.pk}"]]
    assert EmailMessage.objects.get(pk=emails[0].pk).html_body == "<p>redacted</p>"
