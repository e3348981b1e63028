"""Existing tests of bodies, re-run with MAILWARDEN_ENCRYPT_BODIES on: the pipeline's fixture
matrix and body tests, the admin viewer, and the DSR erasure's no-trace check (which rewrites
bodies through the model). Each also checks that what it stored is sealed in the database."""

from __future__ import annotations

import pytest
from django.db import connection

from capture import bodycrypt, dsr, storage
from capture.models import EmailMessage
from crm.models import User
from governance.consent import record_consent
from tests.capture.dsr import test_no_trace as no_trace
from tests.capture.dsr.mail import JANE, TOM, TOM_NAME, subject_mail
from tests.capture.pipeline import test_fixtures_matrix as matrix
from tests.capture.viewer import test_admin_viewer as viewer
from tests.capture.viewer.test_admin_viewer import mail  # noqa: F401 (a fixture)
from tests.factories import make_contact, make_user
from tests.filestore import TEST_MASTER_KEYS

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def bodies_encrypted(settings):
    storage.reset_caches()
    settings.MAILWARDEN_MASTER_KEYS = TEST_MASTER_KEYS
    settings.MAILWARDEN_ENCRYPT_BODIES = True
    yield
    storage.reset_caches()


def assert_bodies_sealed() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT text_body, html_body, CAST(headers AS text) FROM capture_emailmessage"
        )
        rows = cursor.fetchall()
    for text, html, headers in rows:
        assert text == "" or text.startswith(bodycrypt.SEALED)
        assert html == "" or html.startswith(bodycrypt.SEALED)
        assert headers == "[]" or headers.startswith(f'"{bodycrypt.SEALED}')


@pytest.mark.parametrize("name", matrix.ALL_FIXTURES)
def test_every_fixture_ends_processed_or_rejected_with_the_expected_reason(name):
    matrix.test_every_fixture_ends_processed_or_rejected_with_the_expected_reason(name)
    assert_bodies_sealed()


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("latin1_charset.eml", ("möchten", "Grüßen", "Jürgen Müller")),
        ("mislabelled_charset.eml", ("café", "€ 40", "“express”")),
    ],
)
def test_bodies_in_legacy_or_mislabelled_charsets_are_stored_with_their_accents(name, words):
    matrix.test_bodies_in_legacy_or_mislabelled_charsets_are_stored_with_their_accents(name, words)
    assert EmailMessage.objects.exists()
    assert_bodies_sealed()


def test_a_body_over_the_limit_is_truncated_and_flagged(settings):
    matrix.test_a_body_over_the_limit_is_truncated_and_flagged(settings)
    assert_bodies_sealed()


def test_a_body_under_the_limit_is_not_flagged_truncated():
    matrix.test_a_body_under_the_limit_is_not_flagged_truncated()
    assert_bodies_sealed()


def test_the_viewer_shows_the_body_frame_sanitised(mail):  # noqa: F811
    viewer.test_the_body_frame_is_sanitised_under_a_strict_policy_and_audited_once(mail)
    assert_bodies_sealed()


def test_the_viewer_plain_text_fallback(mail):  # noqa: F811
    viewer.test_plain_text_fallback(mail)
    assert_bodies_sealed()


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_dsr_erasure_leaves_no_trace_with_bodies_encrypted():
    """tests/capture/dsr/test_no_trace.py's check with bodies sealed (its stored files are
    encrypted here too, so their plaintext is not looked for)."""
    if connection.vendor != "postgresql":
        pytest.skip("the database dump needs PostgreSQL")
    tom = make_contact(emails=(TOM,), first_name="Tom", last_name="Buyer")
    record_consent(tom.pk, basis="consent", channel="api", evidence_text=f"Form from {TOM}")
    mails = subject_mail()
    assert_bodies_sealed()
    needles = [TOM.encode(), TOM_NAME.encode()]
    before = no_trace.database_dump().lower()
    assert all(n.lower() in before for n in needles)  # the search would find him

    officer = make_user(role=User.Role.COMPLIANCE)
    req, _ = dsr.create_request("erasure", TOM, requested_by=officer)
    req = dsr.run_request(req.pk)
    assert req.state == "completed", req.error

    dump = no_trace.database_dump().lower()
    for needle in needles:
        assert needle.lower() not in dump, f"{needle!r} left in the database"
    for path, data in no_trace.stored_files().items():
        for needle in needles:
            assert needle.lower() not in data.lower(), f"{needle!r} left in {path}"
    assert JANE.encode() in dump
    assert EmailMessage.objects.filter(pk=mails["other"].pk).exists()
    shared = EmailMessage.objects.get(pk=mails["shared"].pk)  # rewritten, sealed again, readable
    assert shared.text_body.startswith("Jane, meet ")
    assert TOM not in shared.text_body.lower() and TOM_NAME not in shared.text_body
    assert_bodies_sealed()
