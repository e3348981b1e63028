"""Multi-row INSERT that skips rows conflicting on a unique key and says which ones won.

`QuerySet.bulk_create(ignore_conflicts=True)` cannot tell which rows were inserted, and one
`save()` per row in a savepoint costs three round trips a row (bench/ingest.py). This builds
the same INSERT through Django's compiler with `ON CONFLICT DO NOTHING` (SQLite: `INSERT OR
IGNORE`) and `RETURNING pk, key`, so a batch's rows go in one statement and the caller learns
which keys another transaction had already taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections, router
from django.db.models import Model
from django.db.models.constants import OnConflict
from django.db.models.sql import InsertQuery


def insert_skipping_conflicts(model: type[Model], objs: Sequence[Model], key: str) -> set[Any]:
    """Insert `objs`; winners get their pk set. Returns the `key` values that were not inserted.

    Rows are inserted in `key` order, so two transactions inserting overlapping batches take
    the unique index's locks in the same order and cannot deadlock on each other.
    """
    if not objs:
        return set()
    opts = model._meta
    key_field = opts.get_field(key)
    db = router.db_for_write(model)
    conn = connections[db]
    if not conn.features.can_return_rows_from_bulk_insert:  # pragma: no cover - PG and SQLite can
        raise NotImplementedError(f"{conn.vendor} cannot return rows from a bulk insert")
    fields = [f for f in opts.concrete_fields if f is not opts.pk and not f.generated]
    ordered = sorted(objs, key=lambda o: getattr(o, key_field.attname))
    for obj in ordered:
        obj._prepare_related_fields_for_save(operation_name="bulk_create")
    size = max(1, conn.ops.bulk_batch_size(fields, ordered))
    won: dict[Any, Any] = {}
    for start in range(0, len(ordered), size):
        query = InsertQuery(model, on_conflict=OnConflict.IGNORE)
        query.insert_values(fields, ordered[start : start + size])
        compiler = query.get_compiler(using=db)
        compiler.returning_fields = [opts.pk, key_field]
        with conn.cursor() as cursor:
            for sql, params in compiler.as_sql():
                cursor.execute(sql, params)
                won.update((k, pk) for pk, k in cursor.fetchall())
    lost = set()
    for obj in ordered:
        value = getattr(obj, key_field.attname)
        if value in won:
            obj.pk = won[value]
            obj._state.adding = False
            obj._state.db = db
        else:
            lost.add(value)
    return lost
