"""Linking benchmark: the pipeline in-process with 20 enabled link rules and 100k open items
over 1M contacts, against the same pipeline with no rules, on the same messages in the same
run (--quick: 10k items over 100k contacts).

The mail is capture/demo.py's (as bench/ingest.py: 5-50 KB, threads of replies) between four
internal users and customers drawn from the CRM; a share of those customers have open deals,
leads, projects and tickets, so single_open asks for review, recent_open links, and the
reference rules scan every subject and body head. Each round processes the same messages
(their Message-IDs re-tagged per round, so nothing dedupes) with the rules enabled and then
disabled, in ABBA order; each side keeps its best round (other jobs on a shared machine only
ever slow a run down). The ratio is msg/s with rules over msg/s without, on CPU seconds
(this process and its PostgreSQL backend), which move far less than wall time under load;
the wall-time ratio is printed too.

Uses its own database `mailwarden_bench_linking` (dropped and re-created) on the server of
--database-url / $DATABASE_URL / the default local PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    CpuMeter,
    bench_args,
    bench_database_url,
    db_backend_pids,
    django_setup,
    print_table,
    recreate_database,
    result_line,
)
from ingest import (
    BATCH,
    INTERNAL,
    contact_person,
    grow_crm,
    prepare_environment,
    seed_users,
    specs_for,
    store_batch,
)

BENCH_DB = "mailwarden_bench_linking"
SEED = 7100
KINDS = ("deal", "lead", "project", "ticket")
PREFIX = {"deal": "ORD", "lead": "LEAD", "project": "PRJ", "ticket": "TCK"}


def configure(parser) -> None:
    parser.add_argument("--messages", type=int, default=None, help="messages per round")
    parser.add_argument("--contacts", type=int, default=None, help="CRM contacts")
    parser.add_argument("--items", type=int, default=None, help="open items")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (each side once)")
    parser.add_argument("--profile", default="", help="write a cProfile of a run with rules")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse the seeded database of an earlier run"
    )


def seed_items(n: int, contacts: int, customers: list[int]) -> float:
    """COPY n open items: the first ones on the mail's customers (a customer has ~2 items),
    the rest on random contacts; 1-2 contacts each. Returns seconds."""
    from django.db import connection, transaction

    t0 = time.perf_counter()
    rng = random.Random(SEED)
    created = datetime(2024, 6, 1, tzinfo=UTC)
    on_customers = min(n, 2 * len(customers))
    with transaction.atomic(), connection.cursor() as cur:
        pg = cur.cursor
        with pg.copy(
            "COPY crm_item (id, created, updated, kind, title, status, stage, currency,"
            " external_ref, last_activity_at) FROM STDIN"
        ) as cp:
            for i in range(n):
                kind = KINDS[i % 4]
                activity = datetime(2025, 1, 1 + i % 28, tzinfo=UTC)
                ref = f"{PREFIX[kind]}-{i:06d}"
                title = f"{kind.capitalize()} {i} delivery schedule"
                cp.write_row((i + 1, created, created, kind, title, "open", "", "", ref, activity))
        link_id = 0
        with pg.copy("COPY crm_item_contacts (id, item_id, contact_id) FROM STDIN") as cp:
            for i in range(n):
                first = (
                    customers[i % len(customers)] if i < on_customers else rng.randrange(contacts)
                )
                people = {first}
                if rng.random() < 0.3:
                    people.add(rng.randrange(contacts))
                for c in people:
                    link_id += 1
                    cp.write_row((link_id, i + 1, c + 1))
        for table in ("crm_item", "crm_item_contacts"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"  # noqa: S608
            )
    with connection.cursor() as cur:
        cur.execute("VACUUM (ANALYZE) crm_item, crm_item_contacts")
    return time.perf_counter() - t0


def seed_rules() -> None:
    """20 enabled rules, 5 a kind: two reference patterns, single_open for inbound mail,
    recent_open(3) for the import channel, single_open for the rest."""
    from capture.models import LinkRule

    rules = []
    for k, kind in enumerate(KINDS):
        base = 10 * k
        rules += [
            LinkRule(
                position=base,
                kind=kind,
                strategy="reference",
                pattern=rf"\b({PREFIX[kind]}-\d{{6}})\b",
            ),
            LinkRule(
                position=base + 1,
                kind=kind,
                strategy="reference",
                pattern=rf"#{PREFIX[kind].lower()}(\d+)\b",
            ),
            LinkRule(position=base + 2, kind=kind, strategy="single_open", direction="inbound"),
            LinkRule(
                position=base + 3,
                kind=kind,
                strategy="recent_open",
                recent_count=3,
                channels=["import"],
            ),
            LinkRule(position=base + 4, kind=kind, strategy="single_open"),
        ]
    LinkRule.objects.bulk_create(rules)


def mail_for(n: int, seed: int, contacts: int):
    """n messages of the mail seed `seed` with the customers seed_items gave items."""
    from capture.demo import generate_demo_messages

    picks = random.Random(SEED).sample(range(contacts), min(contacts, 2_000))
    return generate_demo_messages(
        n=n,
        seed=seed,
        internal=INTERNAL,
        customers=[contact_person(c) for c in picks],
        start=datetime(2025, 3, 3, 8, 0, tzinfo=UTC),
        size_range=(5_000, 50_000),
    )


def retag(messages, tag: str):
    """The same messages with Message-IDs no earlier round stored (so nothing dedupes)."""
    out = []
    for m in messages:
        data = m.data.replace(b"<demo.", f"<demo.{tag}.".encode())
        out.append(dataclasses.replace(m, data=data))
    return out


def run(messages, users, tag: str) -> tuple[float, float, dict]:
    """(wall seconds, CPU seconds of this process and its backend, statuses)."""
    from collections import Counter

    from capture.pipeline import process_raw_messages

    specs = specs_for(messages, users, tag)
    statuses: Counter = Counter()
    meter = CpuMeter(lambda: db_backend_pids(own_only=True)).start()
    t0 = time.perf_counter()
    for i in range(0, len(specs), BATCH):
        ids = store_batch(specs[i : i + BATCH], enqueue=False)
        statuses.update(str(o.status) for o in process_raw_messages(ids))
    return time.perf_counter() - t0, meter.stop(), dict(statuses)


def main() -> None:
    args = bench_args(__doc__, configure=configure)
    quick = args.quick
    n = args.messages or (300 if quick else 1_000)
    contacts = args.contacts or (100_000 if quick else 1_000_000)
    items = args.items or (10_000 if quick else 100_000)
    rounds = args.rounds or (2 if quick else 3)
    url = bench_database_url(args.database_url, BENCH_DB)
    media = Path(tempfile.mkdtemp(prefix="mailwarden-bench-linking-"))
    print(f"database {BENCH_DB}, media {media}", flush=True)
    if not args.reuse:
        recreate_database(url)
    prepare_environment(url, media)
    django_setup(url)
    from django.core.management import call_command
    from django.utils import timezone

    from capture.models import LinkRule, ReviewItem, ThreadLink
    from crm.models import User

    call_command("migrate", verbosity=0)
    if args.reuse:
        users = {u.email: u.pk for u in User.objects.all()}
        LinkRule.objects.all().delete()
    else:
        users = seed_users()
        print(f"{contacts:,} contacts seeded in {grow_crm(0, contacts):.1f} s", flush=True)
        customers = random.Random(SEED).sample(range(contacts), min(contacts, 2_000))
        seconds = seed_items(items, contacts, customers)
        print(f"{items:,} open items seeded in {seconds:.1f} s", flush=True)
    seed_rules()
    # The mail's customers are the ones seed_items gave items (the same draw as
    # make_messages's); a reused database gets mail of another seed (new threads).
    mail_seed = SEED + (int(time.time()) % 10_000 + 1 if args.reuse else 0)
    messages = mail_for(n, mail_seed, contacts)
    # Warm-up: stores the attachments' blobs and warms caches, so every round measured
    # dedupes the same blobs and starts from the same state.
    started = timezone.now()
    tag = started.strftime("%H%M%S")  # a reused database holds earlier runs' mail
    run(retag(messages, f"warm{tag}"), users, f"warm{tag}")
    best: dict[str, tuple[float, float]] = {}
    order = []
    for k in range(rounds):
        order += ["with", "without"] if k % 2 == 0 else ["without", "with"]
    if args.profile:  # an extra round with the rules, profiled, not measured
        import cProfile

        LinkRule.objects.update(enabled=True)
        profile = cProfile.Profile()
        profile.enable()
        run(retag(messages, f"p{tag}"), users, f"p{tag}")
        profile.disable()
        profile.dump_stats(args.profile)
    for k, side in enumerate(order):
        LinkRule.objects.update(enabled=side == "with")
        wall, cpu, statuses = run(retag(messages, f"r{k}{tag}"), users, f"r{k}{tag}")
        print(
            f"  {side} rules: {n / wall:.1f} msg/s, {cpu * 1000 / n:.2f} CPU ms/msg {statuses}",
            flush=True,
        )
        prev = best.get(side, (wall, cpu))
        best[side] = (min(prev[0], wall), min(prev[1], cpu))
    rule_links = ThreadLink.objects.filter(source="rule", created__gte=started).count()
    reviews = ReviewItem.objects.filter(kind="ambiguous_item", created__gte=started).count()
    with_wall, with_cpu = best["with"]
    without_wall, without_cpu = best["without"]
    print_table(
        ("run", "msg/s (wall)", "CPU ms/msg"),
        [
            ("20 rules", n / with_wall, with_cpu * 1000 / n),
            ("no rules", n / without_wall, without_cpu * 1000 / n),
        ],
    )
    print(f"links made by rules: {rule_links}, item reviews: {reviews}", flush=True)
    result_line(
        "linking",
        without_cpu / with_cpu,
        ">=0.85",
        wall_ratio=round(without_wall / with_wall, 3),
        with_cpu_ms=round(with_cpu * 1000 / n, 2),
        without_cpu_ms=round(without_cpu * 1000 / n, 2),
        messages=n,
        contacts=contacts,
        items=items,
        rules=20,
        rule_links=rule_links,
    )


if __name__ == "__main__":
    main()
