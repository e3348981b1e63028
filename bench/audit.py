"""Does the hash-chained audit log serialise writers?

N writer processes insert audit events concurrently on PostgreSQL, each event in its own
transaction (as the capture workers, the API and the admin do), twice:

- without chain: nobody seals, the rows just accumulate unsealed;
- with chain: a sealer process runs `seal_pending_events()` in a tight loop the whole time
  (much harsher than production's every 30 s).

ratio = events/s with the chain / events/s without it (target >= 0.9). Rounds alternate and
the median of each side is used, because this machine's fsync time is noisy. Also printed:
the sealer's throughput (events sealed per second) on a backlog.

Uses its own database (default postgres://postgres@127.0.0.1:5432/mailwarden_bench_audit),
created and migrated on first use; the audit table is truncated before each run.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_args, django_setup, print_table, result_line

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/mailwarden_bench_audit"


def configure(parser) -> None:
    parser.add_argument("--writers", type=int, default=4, help="concurrent writer processes")
    parser.add_argument("--events", type=int, default=0, help="events per writer per round")
    parser.add_argument("--rounds", type=int, default=0, help="rounds per side")


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def writer(url: str, tag: int, count: int, go, done_q) -> None:
    django_setup(url)
    from django.db import connection, transaction

    from governance.audit import record_event

    connection.ensure_connection()
    go.wait()
    start = time.perf_counter()
    for i in range(count):
        with transaction.atomic():
            record_event(
                "bench.event",
                actor=f"bench-writer-{tag}",
                object_type="bench.thing",
                object_id=i,
                channel="bench",
                detail={"i": i, "writer": tag},
            )
    done_q.put((start, time.perf_counter()))
    connection.close()


def sealer(url: str, go, stop, result_q) -> None:
    django_setup(url)
    from django.db import connection

    from governance.audit import seal_pending_events

    connection.ensure_connection()
    go.wait()
    sealed = 0
    while not stop.is_set():
        n = seal_pending_events(batch_size=2000)
        sealed += n
        if n == 0:
            time.sleep(0.01)
    sealed += seal_pending_events()
    result_q.put(sealed)
    connection.close()


def run_round(url: str, writers: int, events: int, with_chain: bool) -> float:
    """Events per second across all writers for one round."""
    ctx = mp.get_context("spawn")
    go, stop = ctx.Event(), ctx.Event()
    done_q, sealed_q = ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=writer, args=(url, t, events, go, done_q)) for t in range(writers)]
    seal_proc = ctx.Process(target=sealer, args=(url, go, stop, sealed_q)) if with_chain else None
    for p in procs + ([seal_proc] if seal_proc else []):
        p.start()
    time.sleep(3.0)  # let every process import Django and connect before the clock starts
    go.set()
    spans = [done_q.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    stop.set()
    if seal_proc:
        sealed_q.get(timeout=600)
        seal_proc.join()
    elapsed = max(end for _, end in spans) - min(start for start, _ in spans)
    return writers * events / elapsed


def main() -> None:
    args = bench_args(__doc__, configure=configure)
    url = args.database_url or DEFAULT_URL
    events = args.events or (400 if args.quick else 2000)
    rounds = args.rounds or (3 if args.quick else 5)
    ensure_database(url)
    django_setup(url)
    from django.core.management import call_command
    from django.db import connection

    from governance.audit import seal_pending_events, verify_chain

    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cur:
        cur.execute("TRUNCATE governance_auditevent, governance_auditanchor RESTART IDENTITY")
    connection.close()

    without, with_chain = [], []
    for r in range(rounds):
        # Alternate the order so drift (table growth, disk cache) hits both sides alike.
        order = (False, True) if r % 2 == 0 else (True, False)
        for chained in order:
            seal_pending_events()  # start each round with nothing pending
            connection.close()
            rate = run_round(url, args.writers, events, chained)
            (with_chain if chained else without).append(rate)
            print(
                f"round {r + 1}: {'with chain   ' if chained else 'without chain'} {rate:8.1f} events/s",
                flush=True,
            )

    # Sealing throughput on a backlog: insert unsealed events without a sealer, then time one seal.
    run_round(url, args.writers, events, with_chain=False)
    pending = (
        __import__("governance.models", fromlist=["AuditEvent"])
        .AuditEvent.objects.filter(seal_seq__isnull=True)
        .count()
    )
    t0 = time.perf_counter()
    sealed = seal_pending_events()
    seal_rate = sealed / (time.perf_counter() - t0)
    report = verify_chain()

    med_without, med_with = statistics.median(without), statistics.median(with_chain)
    ratio = med_with / med_without
    print()
    print_table(
        ["side", "rounds", "median events/s", "min", "max"],
        [
            [
                "without chain",
                len(without),
                round(med_without, 1),
                round(min(without), 1),
                round(max(without), 1),
            ],
            [
                "with chain",
                len(with_chain),
                round(med_with, 1),
                round(min(with_chain), 1),
                round(max(with_chain), 1),
            ],
        ],
    )
    print(f"\nsealer: {sealed} of {pending} pending events sealed at {seal_rate:.0f} events/s")
    print(f"chain verified: {report.ok} ({report.checked} events)")
    result_line(
        "audit",
        ratio,
        ">=0.9",
        with_chain_ev_s=round(med_with, 1),
        without_chain_ev_s=round(med_without, 1),
        seal_ev_s=round(seal_rate, 1),
        writers=args.writers,
        events_per_round=args.writers * events,
        chain_ok=report.ok,
    )


if __name__ == "__main__":
    main()
