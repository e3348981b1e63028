"""Audit review services behind the admin (governance/admin.py): CSV export safe against
spreadsheet formula injection, the hash-chain verification run on request, both audited.

The admin views are thin doors over these functions (docs/admin.md "Audit review").
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.db.models import QuerySet

from governance.audit import ChainReport, record_event, verify_chain
from governance.models import AuditEvent

# A cell a spreadsheet would read as a formula (or a command, in old ones) starts with one of
# these: OWASP "CSV injection". Such a cell is written with a leading apostrophe.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

EXPORT_COLUMNS = (
    "id",
    "created",
    "action",
    "actor_type",
    "actor_user_id",
    "actor_label",
    "object_type",
    "object_id",
    "channel",
    "address",
    "detail",
    "seal_seq",
    "hash",
)
EXPORT_MAX_ROWS = 1_000_000


def safe_cell(value: Any) -> str:
    """The value as text, defused when a spreadsheet would evaluate it."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


class _Echo:
    def write(self, value: str) -> str:
        return value


def export_rows(queryset: QuerySet[AuditEvent]) -> Iterator[list[str]]:
    import json

    yield list(EXPORT_COLUMNS)
    for event in queryset.order_by("-id")[:EXPORT_MAX_ROWS].iterator(chunk_size=2000):
        values = []
        for name in EXPORT_COLUMNS:
            value = getattr(event, name)
            if name == "detail":
                value = json.dumps(value, sort_keys=True, default=str)
            elif name == "created":
                value = value.isoformat()
            values.append(safe_cell(value))
        yield values


def csv_lines(rows: Iterable[list[str]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow(row)


def export_audit_csv(
    queryset: QuerySet[AuditEvent], *, actor: Any, address: str, filters: dict[str, Any]
) -> Iterator[str]:
    """Record the export (who, which filters, how many rows) and stream the CSV lines."""
    rows = queryset.count() if filters else None
    record_event(
        "audit.exported",
        actor=actor,
        channel="admin",
        address=address,
        object_type="governance.auditevent",
        detail={"filters": filters, "rows": rows, "format": "csv"},
    )
    return csv_lines(export_rows(queryset))


def verify_and_record(
    *, actor: Any, address: str, verify: Callable[[], ChainReport] = verify_chain
) -> ChainReport:
    """Run the hash-chain verification and record its result in the log it verified."""
    report = verify()
    record_event(
        "audit.chain_verified",
        actor=actor,
        channel="admin",
        address=address,
        object_type="governance.auditevent",
        detail={
            "ok": report.ok,
            "checked": report.checked,
            "unsealed": report.unsealed,
            "first_broken_seq": report.first_broken_seq,
            "first_broken_id": report.first_broken_id,
            "reason": report.reason,
        },
    )
    return report
