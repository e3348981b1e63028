"""The Mailwarden admin site and its dashboard (config/admin_site.py, config/portal/dashboard.py)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from config.admin_site import MailwardenAdminSite
from config.portal.dashboard import compute_figures, refresh_snapshot
from config.portal.models import DashboardSnapshot
from core.schedules import declared_schedules
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_the_default_site_is_mailwarden_with_every_registration():
    assert isinstance(
        admin.site._wrapped if hasattr(admin.site, "_wrapped") else admin.site, MailwardenAdminSite
    )
    labels = {m._meta.label for m in admin.site._registry}
    # registrations made with @admin.register in each app landed on the custom site
    assert {"governance.AuditEvent", "capture.EmailMessage", "crm.Contact"} <= labels


def test_index_is_branded_and_shows_the_dashboard(admin_client, capture_mail):
    capture_mail(channel="smtp")
    resp = admin_client.get(reverse("admin:index"))
    html = resp.content.decode()
    assert resp.status_code == 200
    assert "<title>Dashboard | Mailwarden</title>" in html
    for panel in (
        "captured",
        "linking",
        "review",
        "raw",
        "mailboxes",
        "consent",
        "purge",
        "holds",
        "tracking",
    ):
        assert f'id="panel-{panel}"' in html
    assert "<svg" in html


def test_charts_load_nothing_and_run_nothing(admin_client, capture_mail):
    capture_mail(channel="smtp")
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert "<script" not in html.split('id="dashboard"', 1)[1].split("</section>", 1)[0]
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert not url.startswith(("http:", "https:", "//")), url


def test_figures_come_from_the_snapshot_not_a_count_per_view(admin_client, capture_mail):
    capture_mail(channel="smtp")
    refresh_snapshot()
    with CaptureQueriesContext(connection) as queries:
        admin_client.get(reverse("admin:index"))
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "capture_rawmessage" not in sql and "capture_emailmessage" not in sql
    before = DashboardSnapshot.objects.latest().figures
    capture_mail(channel="smtp")
    assert DashboardSnapshot.objects.latest().figures == before  # until the task runs
    refresh_snapshot()
    after = DashboardSnapshot.objects.latest().figures
    assert sum(after["captured"]["smtp"]) == sum(before["captured"]["smtp"]) + 1


def test_figures(capture_mail, superuser):
    from capture.models import EmailMessage, ReviewItem

    raw = capture_mail(channel="smtp")
    capture_mail(channel="imap")
    capture_mail(channel="imap")
    EmailMessage.objects.filter(pk=raw.email_id).update(
        expires_at=timezone.now() + timedelta(days=20)
    )
    ReviewItem.objects.create(kind="ambiguous_contact", email_id=raw.email_id)
    figures = compute_figures()
    assert sum(figures["captured"]["smtp"]) == 1
    assert sum(figures["captured"]["imap"]) == 2
    assert figures["purge"] == {"7": 0, "30": 1, "90": 1}
    assert figures["review"]["open"] == 1
    assert figures["review"]["age"][0] == ["under 1 day", 1]
    total = sum(figures["linking"].values())
    assert total == EmailMessage.objects.values("thread").distinct().count()
    assert figures["holds"] is None or isinstance(figures["holds"], int)


def test_active_holds_and_tracking_are_counted(admin_client):
    from django.utils import timezone

    from capture.models import LegalHold, TrackedMessage, TrackingEvent

    LegalHold.objects.create(name="Audit 2026", reason="External audit")
    LegalHold.objects.create(name="Old case", reason="Settled", active=False)
    tracked = TrackedMessage.objects.create(
        message_id="<t1@example.org>", mode="recipient", expires_at=timezone.now()
    )
    TrackingEvent.objects.create(tracked=tracked, kind="open")
    TrackingEvent.objects.create(tracked=tracked, kind="open", machine=True)
    TrackingEvent.objects.create(tracked=tracked, kind="click")
    refresh_snapshot()
    html = admin_client.get(reverse("admin:index")).content.decode()
    holds = html.split('id="panel-holds"', 1)[1].split("</table>", 1)[0]
    assert re.search(r">\s*1\s*</a>", holds), holds
    from config.portal.dashboard import tracking_counts

    assert tracking_counts() == {"opens": 1, "machine_opens": 1, "clicks": 1}


def test_each_figure_links_to_a_list_that_answers(admin_client, capture_mail):
    capture_mail(channel="smtp")
    html = admin_client.get(reverse("admin:index")).content.decode()
    section = html.split('id="dashboard"', 1)[1].split("</section>", 1)[0]
    links = set(re.findall(r'href="(/admin/[^"]+)"', section))
    links |= set(re.findall(r'xlink:href="(/admin/[^"]+)"', section))
    assert len(links) > 10
    for link in sorted(links):
        resp = admin_client.get(link.replace("&amp;", "&"))
        assert resp.status_code == 200, link
        assert (
            "errornote" not in resp.content.decode()
            or "Please correct" not in resp.content.decode()
        ), link


def test_panels_follow_the_users_permissions(client, capture_mail):
    capture_mail(channel="smtp")
    user = make_user(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_reviewitem"))
    client.force_login(user)
    html = client.get(reverse("admin:index")).content.decode()
    assert 'id="panel-review"' in html
    assert 'id="panel-captured"' not in html
    assert 'id="panel-consent"' not in html


def test_refresh_now_recomputes(admin_client):
    refresh_snapshot()
    n = DashboardSnapshot.objects.count()
    resp = admin_client.post(reverse("admin:portal_dashboard_refresh"))
    assert resp.status_code == 302
    assert DashboardSnapshot.objects.count() == n + 1


def test_refresh_is_a_declared_periodic_task():
    names = {s.task for s in declared_schedules()}
    assert "portal.refresh_dashboard" in names


def test_the_index_costs_the_same_queries_whatever_the_amount_of_mail(admin_client, capture_mail):
    refresh_snapshot()
    admin_client.get(reverse("admin:index"))  # warm caches (content types, permissions)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(reverse("admin:index"))
    for _ in range(5):
        capture_mail(channel="api")
    refresh_snapshot()
    with CaptureQueriesContext(connection) as more:
        admin_client.get(reverse("admin:index"))
    assert len(more.captured_queries) == len(few.captured_queries)


def test_mailbox_health_figures_match_the_mailbox_list(admin_client, superuser):
    from capture.models import MailboxConnection

    def mailbox(**fields):
        return MailboxConnection.objects.create(
            owner=superuser, host="imap.example", username="u", **fields
        )

    mailbox(last_sync_at=timezone.now())
    mailbox(last_error="auth failed", last_sync_at=timezone.now())
    mailbox(paused_reason="too many auth failures", last_error="auth failed")
    mailbox(reconcile_gap=4, last_sync_at=timezone.now())
    mailbox(enabled=False, last_error="old")
    figures = compute_figures()["mailboxes"]
    assert figures == {
        "enabled": 4,
        "erroring": 1,
        "paused": 1,
        "stale": 1,
        "with_gaps": 1,
        "gap_uids": 4,
    }
    refresh_snapshot()
    html = admin_client.get(reverse("admin:index")).content.decode()
    panel = html.split('id="panel-mailboxes"', 1)[1].split("</table>", 1)[0]
    for state, expected in (("error", 1), ("paused", 1)):
        href = re.search(rf'href="([^"]*state={state}[^"]*)"', panel).group(1).replace("&amp;", "&")
        resp = admin_client.get(href)
        assert resp.context["cl"].result_count == expected
