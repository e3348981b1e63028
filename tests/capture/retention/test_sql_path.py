"""The SQL path of recompute (one policy counted from the message's date, scoped by direction
or stored level at most) gives every message the outcome the Python resolution gives it, and
any other set of policies still takes the Python path (capture/retention.py `sql_plan`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from capture import retention
from capture.models import EmailMessage
from capture.retention import Spec, compute_expiry, enabled_specs, recompute, sql_plan
from tests.capture.retention.helpers import capture, mail, policy

pytestmark = pytest.mark.django_db

COLUMNS = ("expires_at", "expiry_policy_id", "expiry_action", "expiry_rule")
# (direction, stored, disposition) of the messages, in order
SHAPES = [
    ("inbound", "full", ""),
    ("outbound", "full", ""),
    ("internal", "subject", ""),
    ("inbound", "metadata", "redacted"),
    ("outbound", "subject", "anonymised"),
    ("inbound", "full", "redacted,anonymised"),
    ("inbound", "full", "in_review"),  # frozen: neither path touches it
    ("unknown", "metadata", "reviewed"),
]


def stored_mail() -> list[int]:
    ids = []
    for i, (direction, stored, disposition) in enumerate(SHAPES):
        m = capture(mail(f"sql-{i}@x.example", date=datetime(2021, 3, 1 + i, 8, tzinfo=UTC)))
        EmailMessage.objects.filter(pk=m.pk).update(
            direction=direction,
            stored=stored,
            disposition=disposition,
            # a stale outcome the recompute must replace (or, when frozen, leave alone)
            expires_at=datetime(2030, 1, 1, tzinfo=UTC),
            expiry_action="delete",
            expiry_rule="stale",
        )
        ids.append(m.pk)
    return ids


def outcomes(ids: list[int]) -> dict[int, tuple]:
    return {
        row[0]: row[1:]
        for row in EmailMessage.objects.filter(pk__in=ids).values_list("pk", *COLUMNS)
    }


def reset(ids: list[int]) -> None:
    EmailMessage.objects.filter(pk__in=ids).exclude(
        disposition__in=sorted(retention.FROZEN)
    ).update(
        expires_at=datetime(2030, 1, 1, tzinfo=UTC), expiry_action="delete", expiry_rule="stale"
    )


CASES = [
    {"action": "delete", "duration_days": 30},
    {"action": "redact", "duration_days": 365, "directions": ["inbound", "internal"]},
    {"action": "anonymise", "duration_days": 10, "stored_levels": ["full", "subject"]},
    {"action": "retain", "duration_days": 3650, "directions": ["outbound"]},
    {"action": "review", "duration_days": 5, "directions": ["inbound"], "stored_levels": ["full"]},
    {"action": "delete", "duration_days": 3_000_000},  # past year 9999: the end of time
]


@pytest.mark.postgres
@pytest.mark.parametrize("fields", CASES, ids=[c["action"] for c in CASES])
def test_the_sql_path_gives_what_the_python_resolution_gives(fields):
    ids = stored_mail()
    p = policy("only", **fields)
    assert sql_plan(enabled_specs()) == Spec.of(p)
    result = recompute()
    by_sql = outcomes(ids)
    reset(ids)
    for _ in compute_expiry({}, specs=enabled_specs()):  # the Python resolution, written
        pass
    by_python = outcomes(ids)
    assert by_sql == by_python
    frozen = [pk for pk, shape in zip(ids, SHAPES, strict=True) if shape[2] in retention.FROZEN]
    assert all(by_sql[pk][3] == "stale" for pk in frozen)  # untouched
    assert result["messages"] == len(ids) - len(frozen)
    assert result["changed"] == len(ids) - len(frozen)
    assert recompute()["changed"] == 0  # nothing left to change
    if fields["action"] == "delete" and fields["duration_days"] == 30:
        first = EmailMessage.objects.get(pk=ids[0])
        assert first.expires_at == datetime(2021, 3, 1, 8, tzinfo=UTC) + timedelta(days=30)
        assert (first.expiry_policy_id, first.expiry_rule) == (p.pk, "only_policy")


@pytest.mark.postgres
def test_with_no_policy_the_sql_path_clears_old_outcomes():
    ids = stored_mail()
    assert sql_plan([]) is None
    assert recompute()["changed"] == len(ids) - 2
    assert {v for pk, v in outcomes(ids).items()} >= {(None, None, "", "")}


@pytest.mark.parametrize(
    "fields",
    [
        {"trigger": "thread_activity"},
        {"categories": ["pricing"]},
        {"channels": ["imap"]},
        {"unlinked_only": True},
        {"link_kinds": ["deal"]},
    ],
)
def test_other_policies_take_the_python_path(fields):
    policy("scoped", **fields)
    assert sql_plan(enabled_specs()) is False


def test_two_policies_take_the_python_path():
    policy("a", duration_days=30)
    policy("b", duration_days=60)
    assert sql_plan(enabled_specs()) is False
