"""Timeline benchmark: one page of a record's timeline (capture/timeline.py) for a contact
with 100k messages against one with 100, in the same database.

Data (bulk inserts, no pipeline): the big contact's 100k messages in 25k threads of 4, the
small contact's 100 in 25 threads, their dates interleaved over three years; one link per
thread, with the thread's last date copied by capture.pipeline.refresh_thread_stats (as the
pipeline does); then VACUUM ANALYZE. Measured: the first page and a page from a cursor in
the middle of the big timeline (or the small one's last page), 25 entries, as an admin
(sees everything) and as the member who owns the threads (the visibility filter applies),
each the median of R calls after a warm-up. The ratio is big/small for the admin's pages.

Uses its own database `mailwarden_bench_timeline` (dropped and re-created) on the server of
--database-url / $DATABASE_URL / the default local PostgreSQL.
"""

from __future__ import annotations

import statistics
import sys
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

BENCH_DB = "mailwarden_bench_timeline"
PER_THREAD = 4
PAGE = 25
START = datetime(2023, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=3 * 365)


def configure(parser) -> None:
    parser.add_argument("--big", type=int, default=100_000, help="messages of the big record")
    parser.add_argument("--small", type=int, default=100, help="messages of the small record")
    parser.add_argument("--rounds", type=int, default=None, help="calls per measurement")


def seed_record(contact, owner, messages: int, offset: timedelta) -> int:
    """`messages` messages in threads of PER_THREAD linked to `contact`; returns threads."""
    from capture.models import EmailMessage, Thread, ThreadLink
    from capture.pipeline import refresh_thread_stats
    from core.db.bulk import bulk_insert

    n_threads = max(1, messages // PER_THREAD)
    step = SPAN / n_threads
    now = datetime.now(UTC)
    done = 0
    chunk = 5_000
    for first in range(0, n_threads, chunk):
        threads = [
            Thread(created=now, updated=now, subject=f"Order {contact.pk}-{i}", owner=owner)
            for i in range(first, min(n_threads, first + chunk))
        ]
        bulk_insert(Thread, threads)
        emails, links = [], []
        for t_index, thread in enumerate(threads, start=first):
            base = START + offset + step * t_index
            for k in range(PER_THREAD):
                if done >= messages:
                    break
                emails.append(
                    EmailMessage(
                        created=now,
                        updated=now,
                        message_id=f"<{contact.pk}.{t_index}.{k}@bench.example>",
                        thread=thread,
                        subject=f"Re: Order {contact.pk}-{t_index}",
                        date=base + timedelta(hours=k),
                        from_address="buyer@customer.example",
                        text_body="Monday works for us. " * 20,
                    )
                )
                done += 1
            links.append(
                ThreadLink(
                    created=now,
                    updated=now,
                    thread=thread,
                    contact=contact,
                    source=ThreadLink.Source.PARTICIPANT,
                )
            )
        bulk_insert(EmailMessage, emails, batch_size=2_000)
        bulk_insert(ThreadLink, links, batch_size=2_000)
        refresh_thread_stats({t.pk for t in threads})  # counts, dates, the links' last_at
    return n_threads


def median_ms(fn, rounds: int) -> float:
    fn()  # warm-up: plans and caches
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    args = bench_args(__doc__, configure=configure)
    rounds = args.rounds or (30 if args.quick else 200)
    url = bench_database_url(args.database_url, BENCH_DB)
    recreate_database(url)
    django_setup(url)
    from django.core.management import call_command
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    from capture.models import ThreadLink
    from capture.timeline import encode_cursor, timeline_page
    from crm.models import Contact, User

    t0 = time.perf_counter()
    call_command("migrate", verbosity=0)
    admin = User.objects.create(username="bench-admin", role=User.Role.ADMIN)
    member = User.objects.create(username="bench-member", role=User.Role.MEMBER)
    big = Contact.objects.create(first_name="Big", last_name="Customer")
    small = Contact.objects.create(first_name="Small", last_name="Customer")
    big_threads = seed_record(big, member, args.big, timedelta(0))
    small_threads = seed_record(small, member, args.small, timedelta(minutes=7))
    with connection.cursor() as cur:
        for table in ("capture_thread", "capture_emailmessage", "capture_threadlink"):
            cur.execute(f"VACUUM ANALYZE {table}")
    print(
        f"seeded {args.big:,} + {args.small:,} messages ({big_threads:,} + {small_threads:,}"
        f" threads) in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )

    def middle_cursor(contact) -> str:
        links = ThreadLink.objects.filter(contact=contact).order_by("-last_at", "-thread_id")
        n = links.count()
        link = links.values_list("last_at", "thread_id")[max(0, min(n // 2, n - PAGE - 1))]
        return encode_cursor(*link)

    rows, figures = [], {}
    for viewer_name, viewer in (("admin", admin), ("member", member)):
        for label, contact in (("100k", big), ("100", small)):
            cursor = middle_cursor(contact)
            for page_name, cur in (("first", None), ("middle", cursor)):
                page = timeline_page(contact, viewer, cur, PAGE)
                assert len(page.entries) == PAGE or contact is small, len(page.entries)
                reset_queries()
                with CaptureQueriesContext(connection) as queries:
                    timeline_page(contact, viewer, cur, PAGE)
                ms = median_ms(
                    lambda c=contact, v=viewer, k=cur: timeline_page(c, v, k, PAGE), rounds
                )
                figures[(viewer_name, label, page_name)] = ms
                rows.append((viewer_name, label, page_name, len(page.entries), len(queries), ms))
    print_table(("viewer", "record", "page", "entries", "queries", "median ms"), rows)
    ratio_first = figures[("admin", "100k", "first")] / figures[("admin", "100", "first")]
    ratio_middle = figures[("admin", "100k", "middle")] / figures[("admin", "100", "middle")]
    ratio_member = figures[("member", "100k", "first")] / figures[("member", "100", "first")]
    print(
        "note: wall-clock on a shared 2-core machine; medians of "
        f"{rounds} calls per row (other engineers' jobs were running)",
        flush=True,
    )
    result_line(
        "timeline",
        max(ratio_first, ratio_middle),
        "<=3",
        first_ratio=ratio_first,
        middle_ratio=ratio_middle,
        member_ratio=ratio_member,
        big_first_ms=figures[("admin", "100k", "first")],
        small_first_ms=figures[("admin", "100", "first")],
        messages=args.big,
        rounds=rounds,
    )


if __name__ == "__main__":
    main()
