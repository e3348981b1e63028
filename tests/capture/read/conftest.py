from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from capture.intake import RawSpec, store_raw_message
from capture.pipeline import process_raw_message
from crm.models import ApiToken
from tests.factories import make_contact, make_organization, make_user


def capture_bytes(data: bytes, user, channel: str = "import") -> int:
    raw = store_raw_message(RawSpec(data=data, channel=channel, user_id=user.pk), enqueue=False)
    outcome = process_raw_message(raw.pk)
    assert outcome.status == "processed", outcome
    return outcome.email_id


@pytest.fixture
def api():
    def client_for(user, scopes=("capture:read",)):
        _, key = ApiToken.issue(user=user, name="t", scopes=list(scopes))
        c = APIClient()
        c.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return c

    return client_for


@pytest.fixture
def world(db, mail_fixture):
    """Two members; alice captured the nested multipart mail, bob captured nothing."""
    alice = make_user(username="alice", email="alice@mailwarden-demo.com")
    bob = make_user(username="bob", email="bob@mailwarden-demo.com")
    admin = make_user(username="root", role="admin")
    org = make_organization(name="Acme", domains=("acme-widgets.com",))
    contact = make_contact(emails=("jane.doe@acme-widgets.com",), organization=org)
    email_id = capture_bytes(mail_fixture("nested_multipart.eml"), alice)
    return {
        "alice": alice,
        "bob": bob,
        "admin": admin,
        "org": org,
        "contact": contact,
        "email_id": email_id,
    }
