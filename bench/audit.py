"""Does the hash-chained audit log serialise writers?

N writer processes insert audit events concurrently on PostgreSQL, each event in its own
transaction (as the capture workers, the API and the admin do), twice:

- without chain: nobody seals, the rows just accumulate unsealed;
- with chain: a sealer process runs `seal_pending_events()` every --seal-interval seconds
  (default 1 s: thirty times more often than production's beat schedule of 30 s);
- with chain, tight loop (informational): the sealer never rests, sealing each event as it
  commits. On a 2-core machine this mostly measures CPU and WAL-flush competition from one
  more busy process, not waiting on the chain.

ratio = events/s with the chain / events/s without it (target >= 0.9), computed per round
(the sides of a round run back to back) and the median taken, because this machine's fsync
time and outside load are noisy. Also printed:
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
    parser.add_argument(
        "--seal-interval",
        type=float,
        default=1.0,
        help="seconds between sealer runs (production: 30)",
    )


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


def sealer(url: str, interval: float, go, stop, result_q) -> None:
    django_setup(url)
    from django.db import connection

    from governance.audit import seal_pending_events

    connection.ensure_connection()
    go.wait()
    sealed = 0
    while not stop.is_set():
        n = seal_pending_events(batch_size=2000)
        sealed += n
        if interval > 0:
            stop.wait(interval)
        elif n == 0:
            time.sleep(0.005)
    sealed += seal_pending_events()
    result_q.put(sealed)
    connection.close()


def run_round(url: str, writers: int, events: int, seal_interval: float | None) -> float:
    """Events per second across all writers for one round."""
    ctx = mp.get_context("spawn")
    go, stop = ctx.Event(), ctx.Event()
    done_q, sealed_q = ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=writer, args=(url, t, events, go, done_q)) for t in range(writers)]
    seal_proc = (
        ctx.Process(target=sealer, args=(url, seal_interval, go, stop, sealed_q))
        if seal_interval is not None
        else None
    )
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
    events = args.events or (1000 if args.quick else 2500)
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

    sides = {
        "without chain": None,
        f"with chain (sealer every {args.seal_interval:g} s)": args.seal_interval,
        "with chain (sealer in a tight loop)": 0.0,
    }
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for r in range(rounds):
        # Rotate the order so drift (table growth, other load) hits every side alike.
        names = list(sides)
        names = names[r % len(names) :] + names[: r % len(names)]
        for name in names:
            seal_pending_events()  # start each round with nothing pending
            connection.close()
            rate = run_round(url, args.writers, events, sides[name])
            rates[name].append(rate)
            print(f"round {r + 1}: {name:<36} {rate:8.1f} events/s", flush=True)

    # Sealing throughput on a backlog: insert unsealed events without a sealer, then time one seal.
    run_round(url, args.writers, events, None)
    pending = (
        __import__("governance.models", fromlist=["AuditEvent"])
        .AuditEvent.objects.filter(seal_seq__isnull=True)
        .count()
    )
    t0 = time.perf_counter()
    sealed = seal_pending_events()
    seal_rate = sealed / (time.perf_counter() - t0)
    report = verify_chain()

    medians = {name: statistics.median(values) for name, values in rates.items()}
    names = list(sides)
    med_without, med_with = medians[names[0]], medians[names[1]]
    # Paired per round (the sides of one round ran back to back, under the same outside load),
    # then the median: steadier than a ratio of medians on a shared, noisy machine.
    paired = [w / wo for w, wo in zip(rates[names[1]], rates[names[0]], strict=True)]
    paired_tight = [t / wo for t, wo in zip(rates[names[2]], rates[names[0]], strict=True)]
    ratio = statistics.median(paired)
    print()
    print_table(
        ["side", "rounds", "median events/s", "min", "max", "vs without"],
        [
            [
                n,
                len(rates[n]),
                round(medians[n], 1),
                round(min(rates[n]), 1),
                round(max(rates[n]), 1),
                f"{medians[n] / med_without:.2f}",
            ]
            for n in names
        ],
    )
    print(f"\npaired ratios per round: {', '.join(f'{x:.2f}' for x in paired)}")
    print(f"\nsealer: {sealed} of {pending} pending events sealed at {seal_rate:.0f} events/s")
    print(f"chain verified: {report.ok} ({report.checked} events)")
    result_line(
        "audit",
        ratio,
        ">=0.9",
        with_chain_ev_s=round(med_with, 1),
        without_chain_ev_s=round(med_without, 1),
        tight_loop_ratio=round(statistics.median(paired_tight), 3),
        seal_interval_s=args.seal_interval,
        seal_ev_s=round(seal_rate, 1),
        writers=args.writers,
        events_per_round=args.writers * events,
        chain_ok=report.ok,
    )


if __name__ == "__main__":
    main()
