"""effective_settings_of_users (the gate's one query per batch) agrees with effective_settings."""

from __future__ import annotations

import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from governance.models import UserSettings
from governance.settings import effective_settings, effective_settings_of_users
from tests.factories import make_user, set_org_settings

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("enforce", "default"), list(itertools.product((False, True), (False, True)))
)
def test_many_users_settings_match_one_by_one_in_one_query(enforce, default):
    org = set_org_settings(private_by_default=default, enforce_private_by_default=enforce)
    users = [make_user() for _ in range(3)]
    UserSettings.objects.create(user=users[0], private_by_default=True, track=True)
    UserSettings.objects.create(user=users[1], private_by_default=False)
    with CaptureQueriesContext(connection) as q:
        many = effective_settings_of_users([u.pk for u in users], org=org)
    assert len(q.captured_queries) == 1
    for u in users:
        assert many[u.pk] == effective_settings(u, org=org)
