"""Dashboard benchmark: the admin index (the dashboard) with 1,000,000 messages against 1,000,
in the same database, grown in place.

Data (bulk inserts, no pipeline): messages in threads of two, each with its processed raw
message (channels in turn, processed over the last 30 days), two threads in three linked to
an organization (one in ten of those by hand), one message in five with an expiry date, a
few open review items; then VACUUM ANALYZE. Measured, as a superuser through the Django test
client: GET /admin/ — ours reads the newest summary row that the beat task wrote — median of
R requests after a warm-up, at the small size and at the big one. The ratio is big/small
(target <= 3). The peer is the same page with the figures computed for each view (what a
dashboard without the summary table costs): `refresh_snapshot()` + GET, printed with its
own ratio. The refresh task's own time at each size is printed too (it runs in the
background every 5 minutes).

Full run: 1,000 then 1,000,000 messages (seeding takes several minutes). --quick: 1,000 then
20,000. Uses its own database `mailwarden_bench_dashboard` (dropped and re-created).
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

BENCH_DB = "mailwarden_bench_dashboard"
CHANNELS = ("smtp", "imap", "api", "addin", "webhook", "import")


def configure(parser) -> None:
    parser.add_argument("--big", type=int, default=None, help="messages at the big size")
    parser.add_argument("--small", type=int, default=1_000, help="messages at the small size")
    parser.add_argument("--rounds", type=int, default=None, help="requests per measurement")


def seed(start: int, stop: int, org) -> None:
    """Messages start..stop-1 (threads of two), their raw rows, links, expiries, reviews."""
    from capture.models import EmailMessage, RawMessage, ReviewItem, Thread, ThreadLink
    from core.db.bulk import bulk_insert

    now = datetime.now(UTC)
    chunk = 10_000
    for first in range(start, stop, chunk):
        last = min(stop, first + chunk)
        threads = [
            Thread(created=now, updated=now, subject=f"Order {i}")
            for i in range(first // 2, (last + 1) // 2)
        ]
        bulk_insert(Thread, threads, batch_size=5_000)
        by_index = {first // 2 + k: t for k, t in enumerate(threads)}
        raws, emails = [], []
        for i in range(first, last):
            when = now - timedelta(minutes=(i * 7) % (30 * 24 * 60))
            raws.append(
                RawMessage(
                    created=when,
                    updated=when,
                    sha256=f"{i:064x}",
                    size=4000,
                    storage_path=f"bench/{i}",
                    channel=CHANNELS[i % len(CHANNELS)],
                    status="processed",
                    received_at=when,
                    processed_at=when,
                )
            )
            emails.append(
                EmailMessage(
                    created=when,
                    updated=when,
                    message_id=f"<{i}@bench.example>",
                    thread=by_index[i // 2],
                    subject=f"Order {i // 2}",
                    date=when,
                    from_address="buyer@customer.example",
                    expires_at=now + timedelta(days=i % 120) if i % 5 == 0 else None,
                )
            )
        bulk_insert(RawMessage, raws, batch_size=5_000)
        bulk_insert(EmailMessage, emails, batch_size=5_000)
        links = [
            ThreadLink(
                created=now,
                updated=now,
                thread=t,
                organization=org,
                source="manual" if t.pk % 30 == 0 else "participant",
                last_at=now,
            )
            for t in threads
            if t.pk % 3
        ]
        bulk_insert(ThreadLink, links, batch_size=5_000)
        reviews = [
            ReviewItem(created=now, updated=now, kind="ambiguous_contact", email=e)
            for e in emails[::500]
        ]
        bulk_insert(ReviewItem, reviews)


def median_ms(fn, rounds: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    args = bench_args(__doc__, configure=configure)
    big = args.big or (20_000 if args.quick else 1_000_000)
    rounds = args.rounds or (15 if args.quick else 50)
    peer_rounds = max(3, rounds // 5)
    url = bench_database_url(args.database_url, BENCH_DB)
    recreate_database(url)
    django_setup(url)
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from config.portal.dashboard import refresh_snapshot
    from crm.models import Organization, User

    settings.ALLOWED_HOSTS = ["*"]
    settings.MAILWARDEN_ADMIN_2FA = False
    call_command("migrate", verbosity=0)
    admin = User.objects.create(username="bench-admin", is_staff=True, is_superuser=True)
    org = Organization.objects.create(name="Customer")
    client = Client()
    client.force_login(admin)

    def index() -> None:
        resp = client.get("/admin/")
        assert resp.status_code == 200, resp.status_code

    def peer() -> None:
        refresh_snapshot()
        index()

    rows, figures = [], {}
    done = 0
    for label, size in (("small", args.small), ("big", big)):
        t0 = time.perf_counter()
        seed(done, size, org)
        done = size
        with connection.cursor() as cur:
            for table in (
                "capture_thread",
                "capture_emailmessage",
                "capture_rawmessage",
                "capture_threadlink",
                "capture_reviewitem",
            ):
                cur.execute(f"VACUUM ANALYZE {table}")
        seeded = time.perf_counter() - t0
        t0 = time.perf_counter()
        refresh_snapshot()
        refresh_ms = (time.perf_counter() - t0) * 1000
        ours = median_ms(index, rounds)
        theirs = median_ms(peer, peer_rounds)
        figures[label] = (ours, theirs, refresh_ms)
        rows.append((label, f"{size:,}", f"{seeded:.1f}", ours, theirs, refresh_ms))
    print_table(
        (
            "size",
            "messages",
            "seed s",
            "index ms (ours)",
            "index ms (per-view figures)",
            "refresh ms",
        ),
        rows,
    )
    ratio = figures["big"][0] / figures["small"][0]
    peer_ratio = figures["big"][1] / figures["small"][1]
    print(
        "note: wall-clock on a shared 2-core machine; medians of "
        f"{rounds} (peer: {peer_rounds}) requests per size",
        flush=True,
    )
    result_line(
        "dashboard",
        ratio,
        "<=3",
        peer_ratio=peer_ratio,
        big_ms=figures["big"][0],
        small_ms=figures["small"][0],
        peer_big_ms=figures["big"][1],
        peer_small_ms=figures["small"][1],
        refresh_big_ms=figures["big"][2],
        messages=big,
        rounds=rounds,
    )


if __name__ == "__main__":
    main()
