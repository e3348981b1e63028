"""Linking tests: the sales team's domain is internal, passwords hash cheaply."""

from __future__ import annotations

import pytest

from tests.factories import set_org_settings


@pytest.fixture(autouse=True)
def _internal_domain(db):
    set_org_settings(internal_domains=["mailwarden-demo.com"])
