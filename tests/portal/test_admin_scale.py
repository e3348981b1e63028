"""Every admin page costs the same at 3 rows as at 30 (docs/admin.md "At scale").

For each ModelAdmin registered on the site: its changelist and the change page of one of its
rows answer 200 to a superuser; the changelist runs as many queries at 30 rows as at 3 (no
N+1); none of its queries is an unfiltered COUNT(*) of a big table; and no form field for a
relation to a big table is a <select> of every row. Timings at a million rows are
bench/admin_pages.py's job, not a test's.
"""

from __future__ import annotations

import itertools
import re

import pytest
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteMixin, RelatedFieldWidgetWrapper
from django.db import connection
from django.forms import Select, SelectMultiple
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.admin import BIG_TABLES, ScaleAdminMixin, ScalePaginator, is_big
from tests.factories import make_contact, make_item, make_organization, make_user
from tests.portal.conftest import message_bytes

_n = itertools.count(1)
BIG_DB_TABLES = {
    m._meta.db_table for m in admin.site._registry if m._meta.label_lower in BIG_TABLES
}
FULL_COUNT = re.compile(r'^SELECT COUNT\(\*\) AS "__count" FROM "(\w+)"\s*$', re.I)


def _admins():
    return sorted(admin.site._registry.items(), key=lambda kv: kv[0]._meta.label_lower)


def _changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def _grow(capture_mail, n: int) -> None:
    """n more of each kind of row the mail and the CRM make: users, organizations, contacts,
    items, and captured messages (threads, participants, raw messages, audit events, links)."""
    for _ in range(n):
        i = next(_n)
        user = make_user(username=f"rep{i}", email=f"rep{i}@mailwarden-demo.com", is_staff=True)
        org = make_organization(name=f"Customer {i}", domains=(f"c{i}.example",))
        contact = make_contact(
            first_name=f"Ann{i}", emails=(f"ann{i}@c{i}.example",), organization=org
        )
        make_item(title=f"Deal {i}", contacts=(contact,), organization=org)
        capture_mail(
            user=user,
            data=message_bytes(subject=f"Order {i}", sender=f"ann{i}@c{i}.example", to=user.email),
        )


def _measure(client) -> dict[str, tuple[int, list[str], int]]:
    """Per registered model: (changelist queries, unfiltered big COUNTs, status)."""
    out = {}
    for model, _model_admin in _admins():
        url = _changelist(model)
        client.get(url)  # warm caches (content types, sessions) out of the count
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        full_counts = [
            q["sql"]
            for q in ctx.captured_queries
            if (m := FULL_COUNT.match(q["sql"].strip())) and m.group(1) in BIG_DB_TABLES
        ]
        out[model._meta.label_lower] = (
            len(ctx.captured_queries),
            full_counts,
            response.status_code,
        )
    return out


@pytest.mark.django_db
def test_changelists_cost_the_same_queries_at_3_and_30_rows(admin_client, capture_mail):
    _grow(capture_mail, 3)
    small = _measure(admin_client)
    _grow(capture_mail, 27)
    big = _measure(admin_client)

    problems = []
    for label, (queries, full_counts, status) in big.items():
        if status != 200 or small[label][2] != 200:
            problems.append(f"{label}: changelist answered {small[label][2]} / {status}")
        if queries != small[label][0]:
            problems.append(f"{label}: {small[label][0]} queries at 3 rows, {queries} at 30")
        if full_counts or small[label][1]:
            problems.append(f"{label}: unfiltered COUNT(*) {full_counts or small[label][1]}")
    assert not problems, "\n".join(problems)


@pytest.mark.django_db
def test_every_change_page_answers(admin_client, capture_mail):
    _grow(capture_mail, 3)
    problems, seen = [], 0
    for model, _model_admin in _admins():
        obj = model._default_manager.order_by("pk").first()
        if obj is None:
            continue
        seen += 1
        url = reverse(
            f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[obj.pk]
        )
        response = admin_client.get(url)
        if response.status_code != 200:
            problems.append(f"{model._meta.label_lower}: {response.status_code}")
    assert not problems, "\n".join(problems)
    # the mail and the CRM gave rows to the big tables at least
    assert seen >= 8


def test_big_tables_have_the_scale_admin():
    missing = [
        m._meta.label_lower
        for m, a in admin.site._registry.items()
        if is_big(m) and not isinstance(a, ScaleAdminMixin)
    ]
    assert not missing


@pytest.mark.django_db
def test_no_relation_to_a_big_table_is_a_select_of_every_row(rf, superuser):
    request = rf.get("/admin/")
    request.user = superuser
    problems = []
    for model, model_admin in _admins():
        form = model_admin.get_form(request, None, change=False)
        for name, field in form.base_fields.items():
            queryset = getattr(field, "queryset", None)
            if queryset is None or not is_big(queryset.model):
                continue
            widget = field.widget
            if isinstance(widget, RelatedFieldWidgetWrapper):
                widget = widget.widget
            if isinstance(widget, (Select, SelectMultiple)) and not isinstance(
                widget, AutocompleteMixin
            ):
                problems.append(f"{model._meta.label_lower}.{name}: {type(widget).__name__}")
    assert not problems, "\n".join(problems)


@pytest.mark.django_db
def test_the_paginator_counts_at_most_the_cap(superuser):
    from crm.models import User

    class Small(ScalePaginator):
        cap = 2

    for i in range(4):
        make_user(username=f"u{i}")
    paginator = Small(User.objects.order_by("pk"), 1)
    assert paginator.count == 3  # cap + 1: "more than the cap"
    assert paginator.num_pages == 2  # pages past the cap are not offered
    assert Small(User.objects.filter(username="u1").order_by("pk"), 1).count == 1
