"""Admin pages that answer in about the same time at 1,000 rows and at millions.

Every ModelAdmin over a big table takes `ScaleAdminMixin` (docs/admin.md "At scale"):

- no full-table COUNT: `ScalePaginator` reads the planner's row estimate
  (pg_class.reltuples) for an unfiltered list and counts a filtered one up to `CAP` rows
  only; `show_full_result_count = False` drops Django's second, unfiltered count;
- pages past `CAP` rows are not offered (OFFSET 900000 reads 900,000 rows): narrow the
  list with a filter or a search instead;
- no giant <select>: a foreign key or many-to-many to a big table that the admin did not
  declare in `autocomplete_fields` or `raw_id_fields` gets the raw-id widget anyway;
- no N+1: `list_select_related` is declared on each admin, and tests/portal/
  test_admin_scale.py asserts that a changelist costs the same number of queries at 3
  rows and at 30.

core is importable by every layer, so the big tables are named by label, not imported.
"""

from __future__ import annotations

import math
from functools import cached_property

from django.contrib.admin.widgets import ForeignKeyRawIdWidget, ManyToManyRawIdWidget
from django.core.paginator import Paginator
from django.db import connections

#: A filtered list is counted up to this many rows; pages beyond it are not offered.
CAP = 10_000

#: Tables that grow with the mail (millions of rows in a real install). A form field for a
#: relation to one of them is never a <select> of every row.
BIG_TABLES = frozenset(
    {
        "capture.rawmessage",
        "capture.emailmessage",
        "capture.expiringmessage",
        "capture.thread",
        "capture.participant",
        "capture.capture",
        "capture.attachment",
        "capture.threadlink",
        "capture.trackedmessage",
        "capture.trackingevent",
        "capture.reviewitem",
        "capture.meeting",
        "crm.contact",
        "crm.organization",
        "crm.item",
        "crm.user",
        "governance.auditevent",
        "governance.consentrecord",
        "governance.webhookdelivery",
    }
)


def is_big(model) -> bool:
    return model._meta.label_lower in BIG_TABLES


def estimated_rows(model, using: str = "default") -> int | None:
    """The planner's row estimate of `model`'s table (PostgreSQL, after ANALYZE/autovacuum),
    or None where there is none (another database, a table never analysed)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cur:
        cur.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(model._meta.db_table)],
        )
        row = cur.fetchone()
    if not row or row[0] is None or row[0] < 0:
        return None
    return int(row[0])


class ScalePaginator(Paginator):
    """A paginator that never counts a big table in full.

    Unfiltered: the planner's estimate when it says more than CAP rows (one catalogue read).
    Filtered (or a small table): `SELECT COUNT(*) FROM (SELECT pk ... LIMIT CAP + 1)`, which
    stops after CAP + 1 matching rows. Either way at most CAP rows are paged through.
    """

    cap = CAP

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        query = getattr(qs, "query", None)
        if query is None:  # a list, not a queryset
            return len(qs)
        if not query.where and not query.distinct and not query.combinator:
            estimate = estimated_rows(qs.model, qs.db)
            if estimate is not None and estimate > self.cap:
                return estimate
        return qs.order_by().values("pk")[: self.cap + 1].count()

    @cached_property
    def num_pages(self) -> int:
        if self.count == 0 and not self.allow_empty_first_page:
            return 0
        hits = max(1, min(self.count, self.cap) - self.orphans)
        return math.ceil(hits / self.per_page)

    @property
    def is_estimate(self) -> bool:
        return self.count > self.cap


class ScaleAdminMixin:
    """Put first in the bases of a ModelAdmin over a big table (see the module doc)."""

    show_full_result_count = False
    paginator = ScalePaginator

    def _raw_id_for_big(self, db_field, kwargs, widget_class):
        declared = set(self.raw_id_fields) | set(self.get_autocomplete_fields(None))
        if (
            "widget" not in kwargs
            and db_field.name not in declared
            and is_big(db_field.remote_field.model)
        ):
            kwargs["widget"] = widget_class(db_field.remote_field, self.admin_site)
        return kwargs

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        kwargs = self._raw_id_for_big(db_field, kwargs, ForeignKeyRawIdWidget)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs = self._raw_id_for_big(db_field, kwargs, ManyToManyRawIdWidget)
        return super().formfield_for_manytomany(db_field, request, **kwargs)
