"""Purge benchmark (docs/retention.md): due messages with participants, a thread link, raw
files and attachment blobs, purged by `manage.py purge_expired` in batches while ingest runs.

Printed, in one run on the same machine:
- RESULT ratio = p95 ingest latency (store + process one message, in this process) while a
  purge process works / p95 without it (goal <= 2);
- the purge rate (messages/s, its own process, no ingest; until its last batch committed:
  `PurgeRun.batches_ms`) vs a bare batched `DELETE ... WHERE email_id = ANY(...)` of the same
  rows and their child rows, which touches no file (goal >= 0.5); beside it the same ratio
  over the whole run, the removal of the files through the outbox included
  (`purge_with_files_vs_bare`);
- recompute_expiry (resolution of every message's policy, written where changed) vs a plain
  `UPDATE ... SET expires_at = date + interval` of the same column (goal >= 0.3).

Beside each wall-clock ratio the same ratio of CPU seconds (`*_cpu`: the purge process by
getrusage minus an idle purge process's start-up, its PostgreSQL backends sampled; the peers'
own process and backend), which moves far less with the load of a shared machine.

The bin is 0 days here (deleted at once, files through the outbox), as the bare DELETE keeps
nothing either. Full run: 1,000,000 due messages; --quick: 20,000.

Uses its own database `mailwarden_bench_purge` (dropped and re-created) on the server of
--database-url / $DATABASE_URL / the default local PostgreSQL.
"""

from __future__ import annotations

import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPO_ROOT,
    CpuMeter,
    bench_args,
    bench_database_url,
    db_backend_pids,
    django_setup,
    print_table,
    process_cpu_seconds,
    recreate_database,
    result_line,
)

BENCH_DB = "mailwarden_bench_purge"
CHUNK = 5000


def configure(parser) -> None:
    parser.add_argument("--messages", type=int, default=None, help="due messages")
    parser.add_argument("--batch", type=int, default=1000, help="purge batch size")


def prepare(url: str, media: Path) -> None:
    os.environ.update(
        {
            "DATABASE_URL": url,
            "CELERY_BROKER_URL": "",
            "MAILWARDEN_MEDIA_ROOT": str(media),
            "MAILWARDEN_RAW_STORAGE_DIR": str(media / "raw"),
            "MAILWARDEN_BLOB_STORAGE_DIR": str(media / "blobs"),
            "MAILWARDEN_RETENTION_BIN_DAYS": "0",
            "MAILWARDEN_LOG_LEVEL": "WARNING",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "bench-" + secrets.token_hex(16),
        }
    )


def build(n: int, tag: str) -> None:
    """n due messages (2020) in threads of 2, each with 3 participants, a raw file and a
    capture; a thread link to a contact; every 4th message an attachment of its own blob."""
    from capture.models import (
        Attachment,
        Blob,
        Capture,
        EmailMessage,
        Participant,
        RawMessage,
        Thread,
        ThreadLink,
    )
    from capture.storage import save_blob, save_raws
    from crm.models import Contact

    contact, _ = Contact.objects.get_or_create(first_name="Bench", last_name="Contact")
    date = datetime(2020, 1, 1, tzinfo=UTC)
    for start in range(0, n, CHUNK):
        ids = range(start, min(n, start + CHUNK))
        threads = Thread.objects.bulk_create(
            [
                Thread(subject=f"t{tag}{i}", message_count=2, first_at=date, last_at=date)
                for i in ids[::2]
            ]
        )
        ThreadLink.objects.bulk_create(
            [ThreadLink(thread=t, contact=contact, source="manual", last_at=date) for t in threads]
        )
        datas = [f"Message-ID: <{tag}-{i}@bench>\r\n\r\nbody {tag} {i}\r\n".encode() for i in ids]
        paths = save_raws(datas)
        raws = RawMessage.objects.bulk_create(
            [
                RawMessage(sha256=d, size=40, storage_path=p, channel="api", status="processed")
                for d, p in paths
            ]
        )
        emails = EmailMessage.objects.bulk_create(
            [
                EmailMessage(
                    message_id=f"{tag}-{i}@bench",
                    thread=threads[k // 2],
                    subject=f"m{i}",
                    date=date,
                    from_address=f"sender{i % 1000}@cust.example",
                    text_body="x" * 200,
                    first_raw=raws[k],
                    expires_at=date + timedelta(days=30),
                    expiry_action="delete",
                    expiry_rule="only_policy",
                )
                for k, i in enumerate(ids)
            ]
        )
        RawMessage.objects.bulk_update(
            [RawMessage(pk=r.pk, email_id=e.pk) for r, e in zip(raws, emails, strict=True)],
            ["email"],
        )
        Capture.objects.bulk_create(
            [Capture(email=e, raw=r, channel="api") for r, e in zip(raws, emails, strict=True)]
        )
        Participant.objects.bulk_create(
            [
                Participant(email=e, role=role, address=f"{role}{k % 1000}@cust.example")
                for k, e in enumerate(emails)
                for role in ("from", "to", "cc")
            ]
        )
        blobs = []
        for k, _ in enumerate(emails[::4]):
            digest, rel = save_blob(f"attachment {tag} {start + 4 * k}".encode(), fsync=False)
            blobs.append(Blob(sha256=digest, size=20, storage_path=rel))
        blobs = Blob.objects.bulk_create(blobs)
        Attachment.objects.bulk_create(
            [
                Attachment(
                    email=e,
                    blob=b,
                    filename="a.pdf",
                    content_type="application/pdf",
                    size=20,
                    sha256=b.sha256,
                )
                for e, b in zip(emails[::4], blobs, strict=True)
            ]
        )
    with __import__("django.db", fromlist=["connection"]).connection.cursor() as cur:
        cur.execute("ANALYZE")


def ingest_latencies(n: int, tag: str, stop: threading.Event | None = None) -> list[float]:
    """Store and process messages one at a time; each one's wall time (ms)."""
    from capture.intake import RawSpec, store_raw_message
    from capture.pipeline import process_raw_message

    out = []
    for i in range(n):
        if stop is not None and stop.is_set():
            break
        data = (
            f"From: a{i}@cust.example\r\nTo: sam@bench.example\r\nSubject: ingest {i}\r\n"
            f"Message-ID: <ingest-{tag}-{i}@bench>\r\nDate: Mon, 1 Dec 2025 10:00:00 +0000\r\n\r\n"
            f"hello {i}\r\n"
        ).encode()
        t0 = time.perf_counter()
        raw = store_raw_message(RawSpec(data=data, channel="api"), enqueue=False)
        process_raw_message(raw.pk)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18] if len(values) >= 20 else max(values)


def run_purge_process(batch: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "purge_expired", "--no-progress", "--batch-size", str(batch)],
        cwd=REPO_ROOT,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


class ChildCpu:
    """CPU seconds of a child process (getrusage, exact) and of the PostgreSQL backends it
    opens (sampled every 50 ms while it runs, as they end with it; the last < 50 ms of each
    backend are missed)."""

    def __init__(self, proc: subprocess.Popen, database: str) -> None:
        import resource

        self.proc, self.database, self.resource = proc, database, resource
        self.mine = set(db_backend_pids(own_only=True))
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.children0 = self._children()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _children(self) -> float:
        r = self.resource.getrusage(self.resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    def _sample(self) -> None:
        import psycopg
        from django.conf import settings

        db = settings.DATABASES["default"]
        with psycopg.connect(
            host=db["HOST"],
            port=db["PORT"] or 5432,
            user=db["USER"],
            dbname=db["NAME"],
            password=db["PASSWORD"] or None,
            autocommit=True,
        ) as conn:
            self.mine.add(conn.info.backend_pid)
            while self.proc.poll() is None:
                pids = [
                    r[0]
                    for r in conn.execute(
                        "SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.database]
                    )
                ]
                for pid in pids:
                    if pid in self.mine:
                        continue
                    cpu = process_cpu_seconds(pid)
                    if cpu:
                        self.first.setdefault(pid, cpu)
                        self.last[pid] = cpu
                time.sleep(0.05)

    def seconds(self) -> float:
        """After the process ended (wait() / communicate() called)."""
        self.thread.join()
        backends = sum(self.last[p] - self.first[p] for p in self.last)
        return self._children() - self.children0 + backends


def due_ids() -> list[int]:
    from capture.models import EmailMessage

    return list(
        EmailMessage.objects.filter(expires_at__isnull=False)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def bare_delete(ids: list[int], batch: int) -> float:
    """The peer: the same rows deleted by id, children first, in batches; no files."""
    from django.db import connection, transaction

    children = (
        ("capture_participant", "email_id"),
        ("capture_attachment", "email_id"),
        ("capture_capture", "email_id"),
        ("capture_messageref", "email_id"),
        ("capture_meetingmessage", "email_id"),
        ("capture_reviewitem", "email_id"),
    )
    t0 = time.perf_counter()
    for i in range(0, len(ids), batch):
        chunk = ids[i : i + batch]
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(
                "UPDATE capture_rawmessage SET email_id = NULL WHERE email_id = ANY(%s)", [chunk]
            )
            cur.execute(
                "UPDATE capture_threadlink SET email_id = NULL WHERE email_id = ANY(%s)", [chunk]
            )
            for table, column in children:
                cur.execute(f"DELETE FROM {table} WHERE {column} = ANY(%s)", [chunk])  # noqa: S608
            cur.execute("DELETE FROM capture_emailmessage WHERE id = ANY(%s)", [chunk])
    return time.perf_counter() - t0


def main() -> None:
    args = bench_args(__doc__, configure=configure)
    n = args.messages or (20_000 if args.quick else 1_000_000)
    url = bench_database_url(args.database_url, BENCH_DB)
    recreate_database(url)
    media = Path(tempfile.mkdtemp(prefix="mw-bench-purge-"))
    prepare(url, media)
    django_setup(url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from capture.models import EmailMessage, PurgeRun, RetentionPolicy
    from capture.retention import recompute

    rows = []
    # 0. the CPU of a purge process with nothing to do (interpreter, Django, connection): not
    #    part of the purge's rate (its duration is measured inside), so not of its CPU either
    proc = run_purge_process(args.batch)
    empty_cpu = ChildCpu(proc, BENCH_DB)
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    startup_cpu_s = empty_cpu.seconds()
    # 1. the purge alone, and its peer on the same rows
    t0 = time.perf_counter()
    build(n, "a")
    print(f"built {n} due messages in {time.perf_counter() - t0:.1f} s", flush=True)
    proc = run_purge_process(args.batch)
    purge_cpu = ChildCpu(proc, BENCH_DB)
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    purge_cpu_s = max(0.01, purge_cpu.seconds() - startup_cpu_s)
    run = PurgeRun.objects.order_by("-pk").first()
    purged = sum(v for by in run.counts.values() for v in by.values())
    assert purged == n and not EmailMessage.objects.exists(), (purged, n)
    purge_rate = n / (run.batches_ms / 1000)
    purge_with_files_rate = n / (run.duration_ms / 1000)
    build(n, "b")
    # 2. recompute vs a plain UPDATE of the column (on the "b" rows), then the bare DELETE
    EmailMessage.objects.update(expires_at=None, expiry_action="", expiry_rule="")
    policy = RetentionPolicy.objects.create(name="bench", duration_days=30)
    meter = CpuMeter(lambda: db_backend_pids(own_only=True)).start()
    t0 = time.perf_counter()
    result = recompute()
    recompute_s = time.perf_counter() - t0
    recompute_cpu_s = meter.stop()
    count = EmailMessage.objects.count()
    assert result["changed"] == count, result
    from django.db import connection

    meter = CpuMeter(lambda: db_backend_pids(own_only=True)).start()
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("UPDATE capture_emailmessage SET expires_at = date + interval '31 days'")
    update_s = time.perf_counter() - t0
    update_cpu_s = meter.stop()
    policy.delete()
    ids = due_ids()
    meter = CpuMeter(lambda: db_backend_pids(own_only=True)).start()
    bare_s = bare_delete(ids, args.batch)
    bare_cpu_s = meter.stop()
    bare_rate = n / bare_s
    rows.append(("purge (own process): rows", n, run.batches_ms / 1000, purge_rate))
    rows.append(("purge, files included", n, run.duration_ms / 1000, purge_with_files_rate))
    rows.append(("bare DELETE by id", n, bare_s, bare_rate))
    rows.append(("recompute_expiry", count, recompute_s, count / recompute_s))
    rows.append(("plain UPDATE", count, update_s, count / update_s))
    build(n, "c")
    # 3. ingest latency without and during a purge
    ingest_n = 300 if args.quick else 2000
    ingest_latencies(30, "warm")
    quiet = ingest_latencies(ingest_n, "quiet")
    proc = run_purge_process(args.batch)
    stop = threading.Event()
    waiter = threading.Thread(target=lambda: (proc.wait(), stop.set()), daemon=True)
    waiter.start()
    busy = ingest_latencies(10 * ingest_n, "busy", stop)
    stop.set()
    proc.wait()
    assert proc.returncode == 0, proc.stderr.read()
    ratio = p95(busy) / p95(quiet)
    rows.append(("ingest p95 ms, no purge", len(quiet), p95(quiet), ""))
    rows.append(("ingest p95 ms, during purge", len(busy), p95(busy), ""))
    print_table(("measure", "rows", "seconds / ms", "per second"), rows)
    result_line(
        "purge",
        ratio,
        "<=2",
        messages=n,
        purge_msg_s=purge_rate,
        bare_delete_msg_s=bare_rate,
        purge_vs_bare=purge_rate / bare_rate,
        purge_with_files_vs_bare=purge_with_files_rate / bare_rate,
        recompute_vs_update=update_s / recompute_s,
        purge_vs_bare_cpu=bare_cpu_s / purge_cpu_s,
        recompute_vs_update_cpu=update_cpu_s / recompute_cpu_s,
        purge_cpu_s=purge_cpu_s,
        purge_startup_cpu_s=startup_cpu_s,
        bare_cpu_s=bare_cpu_s,
        recompute_cpu_s=recompute_cpu_s,
        update_cpu_s=update_cpu_s,
        ingest_p95_quiet_ms=p95(quiet),
        ingest_p95_busy_ms=p95(busy),
    )


if __name__ == "__main__":
    main()
