"""core.db.bulk.execute_arrays: one statement written with PostgreSQL arrays runs on PostgreSQL
(ids as one text literal, other lists bound binary) and on SQLite (each list as one JSON text
through json_each), with the same rows back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection

from capture.models import Thread
from core.db.bulk import _int_arrays_as_text, execute_arrays

pytestmark = pytest.mark.django_db

WHEN = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def threads(n: int) -> list[int]:
    return [
        t.pk
        for t in Thread.objects.bulk_create(
            [Thread(subject=f"s{i}", first_at=WHEN, last_at=WHEN) for i in range(n)]
        )
    ]


def test_any_not_any_and_unnest_select_the_same_rows_on_either_backend():
    ids = threads(5)
    table = Thread._meta.db_table
    rows = execute_arrays(
        f"SELECT id FROM {table} WHERE id = ANY(%b::bigint[])"  # noqa: S608
        " AND NOT id = ANY(%b::bigint[]) ORDER BY id",
        [ids[:4], ids[1:2]],
        fetch=True,
    )
    assert [r[0] for r in rows] == [ids[0], ids[2], ids[3]]
    subjects = execute_arrays(
        f"SELECT id FROM {table} WHERE subject IN"  # noqa: S608
        " (SELECT p.value FROM unnest(%b::text[]) AS p(value)) ORDER BY id",
        [["s1", "s4", "nope"]],
        fetch=True,
    )
    assert [r[0] for r in subjects] == [ids[1], ids[4]]


def test_more_ids_than_sqlite_allows_parameters():
    ids = threads(3)
    many = ids + list(range(10**9, 10**9 + 40_000))  # > SQLite's 32,766 parameters
    table = Thread._meta.db_table
    execute_arrays(
        f"UPDATE {table} SET message_count = %b WHERE id = ANY(%b::bigint[])",  # noqa: S608
        [7, many],
    )
    assert set(Thread.objects.filter(pk__in=ids).values_list("message_count", flat=True)) == {7}


def test_a_cast_left_in_runs_on_postgresql_and_is_refused_on_sqlite():
    if connection.vendor == "postgresql":
        assert execute_arrays("SELECT '[]'::jsonb", [], fetch=True) in ([([],)], [("[]",)])
        return
    with pytest.raises(ValueError, match="PostgreSQL cast"):
        execute_arrays("SELECT '[]'::jsonb", [])


def test_int_lists_become_one_text_literal_and_others_stay_binary():
    sql, params = _int_arrays_as_text(
        "SELECT 1 WHERE a = ANY(%b::bigint[]) AND b = %b AND c = ANY(%b::text[])"
        " AND d = ANY(%b::bigint[])",
        [[3, 1, 2], "x", ["p", "q"], ["not", "ints"]],
    )
    assert sql == (
        "SELECT 1 WHERE a = ANY(%t::bigint[]) AND b = %b AND c = ANY(%b::text[])"
        " AND d = ANY(%b::bigint[])"
    )
    assert params == ["{3,1,2}", "x", ["p", "q"], ["not", "ints"]]
