"""Erasure benchmark: a data-subject erasure (capture/dsr.py) of an address with 1,000
messages, in a store of 10k messages vs in one of 1M — the time must not grow with the store
(goal: ratio = big / small <= 2).

For each size, a fresh database `mailwarden_bench_erasure`: the background mail is bulk
inserted (threads of 4, two participants a message — an external customer among 50k and an
internal user — and a processed raw row per message, no files); then the subject's 1,000
messages go through the real pipeline (raw files on disk): half with the subject as the only
external participant (deleted), half with a colleague of theirs too (pseudonymised, their
.eml deleted); then VACUUM ANALYZE and one erasure, timed end to end (run_request, with its
file unlinks). --quick: 10k vs 100k background messages and 200 subject messages.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    bench_args,
    bench_database_url,
    django_setup,
    print_table,
    recreate_database,
    result_line,
)

BENCH_DB = "mailwarden_bench_erasure"
SUBJECT = "erin.subject@customer-0.example"
START = datetime(2024, 1, 1, tzinfo=UTC)


def configure(parser) -> None:
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--subject-messages", type=int, default=1_000)


def seed_background(n: int) -> None:
    from capture.models import EmailMessage, Participant, RawMessage, Thread
    from core.db.bulk import bulk_insert

    now = datetime.now(UTC)
    chunk = 20_000
    for first in range(0, n, chunk):
        count = min(chunk, n - first)
        threads = [
            Thread(created=now, updated=now, subject=f"Order {i}", message_count=4)
            for i in range(first // 4, (first + count + 3) // 4)
        ]
        bulk_insert(Thread, threads)
        emails = []
        for k in range(count):
            i = first + k
            emails.append(
                EmailMessage(
                    created=now,
                    updated=now,
                    message_id=f"<bg.{i}@bench.example>",
                    thread=threads[k // 4] if k // 4 < len(threads) else threads[-1],
                    subject=f"Re: Order {i // 4}",
                    date=START + timedelta(minutes=i),
                    from_address=f"c{i % 50_000}@cust{i % 5_000}.example",
                    text_body="Monday works for us. " * 10,
                )
            )
        bulk_insert(EmailMessage, emails, batch_size=5_000)
        parts, raws = [], []
        for e in emails:
            parts.append(
                Participant(
                    email=e, role="from", address=e.from_address, match=Participant.Match.UNMATCHED
                )
            )
            parts.append(
                Participant(
                    email=e,
                    role="to",
                    address="sam@bench-internal.example",
                    match=Participant.Match.INTERNAL,
                )
            )
            raws.append(
                RawMessage(
                    created=now,
                    updated=now,
                    sha256="0" * 64,
                    size=1000,
                    storage_path="",
                    channel="api",
                    status=RawMessage.Status.PROCESSED,
                    email=e,
                )
            )
        bulk_insert(Participant, parts, batch_size=10_000)
        bulk_insert(RawMessage, raws, batch_size=10_000)


def subject_mail(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        cc = f"Cc: Colleague <colleague{i % 7}@customer-0.example>\r\n" if i % 2 else ""
        out.append(
            (
                f"From: Erin Subject <{SUBJECT}>\r\nTo: Sam <sam@bench-internal.example>\r\n{cc}"
                f"Subject: Question {i}\r\nDate: Mon, 3 Mar 2025 10:{i % 60:02d}:00 +0000\r\n"
                f"Message-ID: <subject.{i}@customer-0.example>\r\nMIME-Version: 1.0\r\n"
                f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
                f"Hello, this is Erin Subject ({SUBJECT}), question {i}.\r\n"
            ).encode()
        )
    return out


def one_size(url: str, background: int, subject_messages: int) -> tuple[float, dict]:
    recreate_database(url)
    from django.core.management import call_command
    from django.db import connection, connections

    connections.close_all()
    call_command("migrate", verbosity=0)
    from capture import dsr
    from capture.intake import RawSpec, store_raw_messages
    from capture.pipeline import process_raw_messages
    from crm.models import User
    from governance.models import OrgSettings

    org = OrgSettings.load()
    org.internal_domains = ["bench-internal.example"]
    org.save()
    t0 = time.perf_counter()
    seed_background(background)
    raws = store_raw_messages(
        [RawSpec(data=d, channel="api") for d in subject_mail(subject_messages)], enqueue=False
    )
    ids = [r.pk for r in raws]
    for start in range(0, len(ids), 100):
        process_raw_messages(ids[start : start + 100])
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    seeded = time.perf_counter() - t0
    officer = User.objects.create(username="officer", role=User.Role.COMPLIANCE)
    t0 = time.perf_counter()
    # no broker, autocommit: the request's task runs in-process as it is created
    req, _ = dsr.create_request("erasure", SUBJECT, requested_by=officer)
    req = dsr.run_request(req.pk)  # returns at once when the task has completed it
    elapsed = time.perf_counter() - t0
    assert req.state == "completed", req.error
    print(f"  {background:,} background messages seeded in {seeded:.0f} s", flush=True)
    return elapsed, req.counts


def main() -> None:
    args = bench_args(__doc__, configure=configure)
    small, big, subject = args.small, args.big, args.subject_messages
    if args.quick:
        small, big, subject = 10_000, 100_000, 200
    url = bench_database_url(args.database_url, BENCH_DB)
    media = Path(tempfile.mkdtemp(prefix="mw-bench-erasure-"))
    import os

    os.environ["MAILWARDEN_MEDIA_ROOT"] = str(media)
    django_setup(url)
    try:
        rows = []
        times = {}
        for size in (small, big):
            elapsed, counts = one_size(url, size, subject)
            times[size] = elapsed
            rows.append(
                (
                    f"{size:,}",
                    subject,
                    counts["messages_deleted"],
                    counts["anonymised_messages"],
                    f"{elapsed:.2f}",
                )
            )
        print_table(["store", "subject msgs", "deleted", "pseudonymised", "seconds"], rows)
        ratio = times[big] / times[small]
        result_line(
            "erasure",
            ratio,
            "<=2",
            small_store=small,
            big_store=big,
            small_s=round(times[small], 2),
            big_s=round(times[big], 2),
        )
    finally:
        shutil.rmtree(media, ignore_errors=True)


if __name__ == "__main__":
    main()
