"""pipeline.lock_raws loads the batch's raw rows as the ORM does (its PostgreSQL query binds
the ids as one array and converts the JSON columns itself)."""

from __future__ import annotations

import pytest
from django.db import transaction

from capture.models import RawMessage
from capture.pipeline import lock_raws
from tests.capture.pipeline.helpers import make_mail, store
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_the_rows_equal_the_orms_in_id_order():
    user = make_user()
    raws = [
        store(make_mail(message_id=f"<lock-{n}@globex.co.uk>"), user_id=user.pk, options=opts)
        for n, opts in enumerate(({}, {"links": {"contacts": [1]}, "categories": ["x"]}, {}))
    ]
    RawMessage.objects.filter(pk=raws[2].pk).update(envelope_to=["a@b.example"])
    ids = [r.pk for r in reversed(raws)]
    with transaction.atomic():
        loaded = lock_raws(ids)
    expected = list(RawMessage.objects.filter(pk__in=ids).order_by("pk"))
    assert [r.pk for r in loaded] == [r.pk for r in expected]
    for got, want in zip(loaded, expected, strict=True):
        assert {k: v for k, v in got.__dict__.items() if k != "_state"} == {
            k: v for k, v in want.__dict__.items() if k != "_state"
        }
        assert (got._state.adding, got._state.db) == (False, "default")
    assert loaded[1].options == {"links": {"contacts": [1]}, "categories": ["x"]}
    assert loaded[2].envelope_to == ["a@b.example"]
