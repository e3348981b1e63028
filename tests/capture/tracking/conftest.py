"""Fixtures of the tracking tests: an org with an internal domain, a sender, consent helpers."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from crm.models import ApiToken
from governance.consent import record_consent
from tests.factories import make_user, set_org_settings


@pytest.fixture(autouse=True)
def events_buffer():
    """The process's tracking buffer with its thread kept off: a test writes what its requests
    buffered with `events_buffer.flush()`, on the test's own connection (inside its
    transaction). Emptied after each test."""
    from capture.tracking.service import EVENTS

    was = EVENTS.background
    EVENTS.background = False
    EVENTS._take()
    yield EVENTS
    EVENTS._take()
    EVENTS.background = was


@pytest.fixture
def org():
    return set_org_settings(internal_domains=["ourco.test"], track_by_default=True)


@pytest.fixture
def sender(org):
    return make_user(email="sam@ourco.test")


@pytest.fixture
def api_client():
    """`api_client(user, scopes)`: a DRF client with a real token of that user."""

    def client_for(user, scopes=("capture:read", "capture:write")):
        _, key = ApiToken.issue(user=user, name="t", scopes=list(scopes))
        c = APIClient(REMOTE_ADDR="198.51.100.7")
        c.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return c

    return client_for


def grant(contact, basis="contract"):
    record_consent(contact.pk, basis=basis, channel="admin")


def withdraw(contact, **kw):
    record_consent(contact.pk, basis="consent", action="withdrawn", channel="admin", **kw)


def tracking_consent(contact, action, **kw):
    record_consent(
        contact.pk, purpose="tracking", basis="consent", action=action, channel="admin", **kw
    )
