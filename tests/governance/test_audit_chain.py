from __future__ import annotations

import io
import threading

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from governance.audit import record_event, seal_pending_events, verify_chain
from governance.models import AuditEvent


def make_events(n: int, prefix: str = "test") -> list[AuditEvent]:
    return [
        record_event(f"{prefix}.event", actor="tester", object_id=i, detail={"n": i})
        for i in range(n)
    ]


def tamper(sql: str, params: list) -> None:
    """Change the audit table behind the application's back. On PostgreSQL the append-only
    trigger is bypassed the way only a superuser can (session_replication_role = replica)."""
    with transaction.atomic(), connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute(sql, params)


def run_verify() -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_audit_chain", stdout=out, stderr=err)
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_verify_seals_pending_events_first_and_reports_an_intact_chain():
    make_events(5)
    code, out, _ = run_verify()
    assert code == 0
    assert "Sealed 5 pending event(s) first." in out
    assert "intact: 5 event(s) verified" in out
    assert not AuditEvent.objects.filter(seal_seq__isnull=True).exists()


@pytest.mark.django_db
def test_verify_detects_an_altered_event_and_names_the_first_broken_link():
    events = make_events(4)
    seal_pending_events()
    victim = AuditEvent.objects.get(pk=events[2].pk)
    tamper(
        "UPDATE governance_auditevent SET action = %s WHERE id = %s",
        ["forged.event", victim.pk],
    )
    code, _, err = run_verify()
    assert code == 1
    assert f"BROKEN at seal_seq {victim.seal_seq} (event id {victim.pk})" in err
    assert "altered" in err


@pytest.mark.django_db
def test_verify_detects_a_deleted_event():
    events = make_events(4)
    seal_pending_events()
    tamper("DELETE FROM governance_auditevent WHERE id = %s", [events[1].pk])
    code, _, err = run_verify()
    assert code == 1
    assert "missing event" in err


@pytest.mark.django_db
def test_verify_detects_a_rewritten_hash_chain_segment():
    events = make_events(3)
    seal_pending_events()
    # Re-hashing one row is not enough: the next row's prev_hash no longer matches.
    tamper("UPDATE governance_auditevent SET hash = %s WHERE id = %s", ["f" * 64, events[0].pk])
    report = verify_chain()
    assert not report.ok
    assert report.first_broken_id == events[0].pk


@pytest.mark.django_db
def test_seal_audit_command_and_celery_task_seal_pending_events():
    from governance.tasks import seal_audit

    make_events(3)
    out = io.StringIO()
    call_command("seal_audit", stdout=out)
    assert "Sealed 3 audit event(s)." in out.getvalue()
    make_events(2)
    seal_audit.delay()
    assert list(AuditEvent.objects.order_by("seal_seq").values_list("seal_seq", flat=True)) == [
        1,
        2,
        3,
        4,
        5,
    ]
    assert verify_chain().ok


@pytest.mark.postgres
@pytest.mark.django_db
def test_trigger_refuses_update_and_delete_of_a_sealed_event():
    (event,) = make_events(1)
    seal_pending_events()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="forged")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(hash="0" * 64)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "test.event"


@pytest.mark.postgres
@pytest.mark.django_db
def test_trigger_refuses_changing_an_unsealed_events_content_but_lets_the_sealer_seal_it():
    (event,) = make_events(1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(detail={"n": 999})
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(seal_seq=1, hash="x", action="forged")
    assert seal_pending_events() == 1
    assert verify_chain().ok


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_sealers_and_writers_do_not_fork_the_chain():
    make_events(300, prefix="before")
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def sealer() -> None:
        try:
            start.wait()
            for _ in range(20):
                seal_pending_events(batch_size=25)
        except BaseException as e:  # reported below
            errors.append(e)
        finally:
            connection.close()

    def writer(tag: int) -> None:
        try:
            start.wait()
            for i in range(50):
                record_event("during.event", actor=f"writer-{tag}", object_id=i)
        except BaseException as e:
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=sealer) for _ in range(4)]
    threads += [threading.Thread(target=writer, args=(t,)) for t in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    seal_pending_events()
    seqs = list(AuditEvent.objects.order_by("seal_seq").values_list("seal_seq", flat=True))
    assert seqs == list(range(1, 401))
    assert (
        AuditEvent.objects.values("prev_hash").distinct().count() == 400
    )  # no two events share a parent
    assert verify_chain().ok
