"""Ingest benchmark: our pipeline end to end (store raw → Celery worker → processed) against
django-mailbox's `process_incoming_message` on the same messages and the same PostgreSQL.

Generated mail (capture/demo.py: 5-50 KB, a third with an attachment, threads of 1-10
replies) between four internal users and customers of a CRM of 100k contacts (seeded with
COPY; the mail's addresses are real contacts, so matching does real work). Measures, in one
run: ours with a real Celery worker (2 prefork processes, Redis broker); ours in-process on
one thread (orientation); django-mailbox as deployed (autocommit: each message its own
transactions) and in one transaction, these three twice in alternation on fresh mail, each
taking its fastest round; the stdlib parse-only rate of the same messages (the ceiling); and
whether our per-message cost stays flat from 1k to 1M contacts (--quick: 100k).

Uses its own databases `mailwarden_bench` (the main runs) and `mailwarden_bench_flat_small`,
`mailwarden_bench_flat_large` (the flatness runs), dropped and re-created on the server of
--database-url / $DATABASE_URL / the default local PostgreSQL, and Redis db 14 (flushed).
"""

from __future__ import annotations

import email
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from email import policy as email_policy
from email.utils import getaddresses
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPO_ROOT,
    CpuMeter,
    _format_figure,
    bench_args,
    bench_database_url,
    child_pids,
    db_backend_pids,
    django_setup,
    pids_named,
    print_table,
    recreate_database,
)

BENCH_DB = "mailwarden_bench"
REDIS_URL = os.environ.get("MAILWARDEN_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
CONTACTS_PER_ORG = 10
BATCH = 100
#: CPU seconds of the run that just finished (set by the run functions, read by row()).
LAST_CPU = [0.0]
INTERNAL = [
    ("Alice Archer", "alice@mailwarden-demo.com"),
    ("Bob Brennan", "bob@mailwarden-demo.com"),
    ("Carol Castillo", "carol@mailwarden-demo.com"),
    ("Dana Dubois", "dana@mailwarden-demo.com"),
]
FIRST = (
    "anna",
    "ben",
    "chloe",
    "david",
    "emma",
    "felix",
    "grace",
    "henry",
    "ines",
    "jonas",
    "karin",
    "liam",
    "maria",
    "noah",
    "olivia",
    "paul",
    "quinn",
    "rosa",
    "sven",
    "tara",
)
LAST = (
    "meyer",
    "smith",
    "garcia",
    "novak",
    "rossi",
    "larsen",
    "dubois",
    "kowalski",
    "jensen",
    "silva",
    "brown",
    "wagner",
    "costa",
    "nielsen",
    "moreau",
    "fischer",
    "lopez",
    "evans",
    "bauer",
    "ward",
)
ADJ = ("north", "blue", "rapid", "summit", "green", "iron", "bright", "central", "delta", "prime")
NOUN = (
    "logistics",
    "systems",
    "foods",
    "metal",
    "health",
    "energy",
    "retail",
    "labs",
    "print",
    "motors",
)


def configure(parser) -> None:
    parser.add_argument("--messages", type=int, default=None, help="messages per measured run")
    parser.add_argument("--contacts", type=int, default=100_000, help="CRM size for the main runs")
    parser.add_argument(
        "--flat-small", type=int, default=1_000, help="CRM size, small flatness run"
    )
    parser.add_argument("--flat-large", type=int, default=None, help="CRM size, large flatness run")
    parser.add_argument("--flat-messages", type=int, default=None, help="messages per flatness run")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument(
        "--size-kb", default="5-50", help="message size range in KB, e.g. 5-50 or 5-5"
    )
    parser.add_argument(
        "--profile", default="", help="write a cProfile of the in-process run to this file"
    )


# --- environment --------------------------------------------------------------------------


def prepare_environment(url: str, media: Path) -> None:
    os.environ.update(
        {
            "DATABASE_URL": url,
            "MAILWARDEN_EXTRA_APPS": "django_mailbox",
            "CELERY_BROKER_URL": REDIS_URL,
            "MAILWARDEN_MEDIA_ROOT": str(media),
            "MAILWARDEN_RAW_STORAGE_DIR": str(media / "raw"),
            "MAILWARDEN_BLOB_STORAGE_DIR": str(media / "blobs"),
            "MAILWARDEN_LOG_LEVEL": "WARNING",
            # DEBUG keeps every query in memory; production runs without it.
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "bench-" + secrets.token_hex(16),
        }
    )


# --- the CRM ------------------------------------------------------------------------------


def org_domain(o: int) -> str:
    return f"{ADJ[o % 10]}-{NOUN[(o // 10) % 10]}-{o}.com"


def contact_person(c: int) -> tuple[str, str]:
    first, last = FIRST[c % 20], LAST[(c // 20) % 20]
    return (
        f"{first.capitalize()} {last.capitalize()}",
        f"{first}.{last}.{c}@{org_domain(c // CONTACTS_PER_ORG)}",
    )


def seed_users() -> dict[str, int]:
    from crm.models import User
    from governance.models import OrgSettings

    settings = OrgSettings.load()
    settings.internal_domains = ["mailwarden-demo.com"]
    settings.save()
    ids = {}
    for name, address in INTERNAL:
        first, last = name.split()
        user = User.objects.create(
            username=address.split("@")[0], email=address, first_name=first, last_name=last
        )
        ids[address] = user.pk
    return ids


def grow_crm(have: int, want: int) -> float:
    """COPY contacts [have, want) with their organizations and domains; returns seconds."""
    from django.db import DatabaseError, connection, transaction

    if want <= have:
        return 0.0
    t0 = time.perf_counter()
    now = datetime.now(UTC)
    first_org = -(-have // CONTACTS_PER_ORG)
    last_org = -(-want // CONTACTS_PER_ORG)
    with transaction.atomic(), connection.cursor() as cur:
        pg = cur.cursor
        with pg.copy("COPY crm_organization (id, created, updated, name, source) FROM STDIN") as cp:
            for o in range(first_org, last_org):
                name = f"{ADJ[o % 10].capitalize()} {NOUN[(o // 10) % 10].capitalize()} {o}"
                cp.write_row((o + 1, now, now, name, "import"))
        with pg.copy(
            "COPY crm_organizationdomain (id, created, updated, organization_id, domain) FROM STDIN"
        ) as cp:
            for o in range(first_org, last_org):
                cp.write_row((o + 1, now, now, o + 1, org_domain(o)))
        with pg.copy(
            "COPY crm_contact (id, created, updated, first_name, last_name, organization_id,"
            " source, marketing) FROM STDIN"
        ) as cp:
            for c in range(have, want):
                cp.write_row(
                    (
                        c + 1,
                        now,
                        now,
                        FIRST[c % 20].capitalize(),
                        LAST[(c // 20) % 20].capitalize(),
                        c // CONTACTS_PER_ORG + 1,
                        "import",
                        False,
                    )
                )
        with pg.copy(
            "COPY crm_contactemail (id, created, updated, contact_id, address, is_primary) FROM STDIN"
        ) as cp:
            for c in range(have, want):
                cp.write_row((c + 1, now, now, c + 1, contact_person(c)[1], True))
        for table in (
            "crm_organization",
            "crm_organizationdomain",
            "crm_contact",
            "crm_contactemail",
        ):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"  # noqa: S608
            )
    # VACUUM as well as ANALYZE: the first reads of freshly COPYed rows set their hint bits
    # (dirtying pages) and index-only scans need the visibility map. Autovacuum does this
    # in production, but may be off or late on a bench server (it is off on this one), and
    # the large-CRM flatness run would then pay for it alone.
    # And a CHECKPOINT: otherwise the bulk load's dirty pages are written out in the
    # background over the next minutes (checkpoint_completion_target), during the very
    # runs measured next on this CRM. Needs a superuser role; without one it is skipped.
    with connection.cursor() as cur:
        cur.execute(
            "VACUUM (ANALYZE) crm_organization, crm_organizationdomain, crm_contact, "
            "crm_contactemail"
        )
        try:
            cur.execute("CHECKPOINT")
        except DatabaseError:
            print("note: CHECKPOINT needs a superuser role; skipped", flush=True)
    return time.perf_counter() - t0


# --- mail ---------------------------------------------------------------------------------


def make_messages(n: int, seed: int, crm_size: int, size_kb: tuple[int, int]):
    """n generated messages whose customers are contacts drawn from the first crm_size."""
    from capture.demo import generate_demo_messages

    rng = random.Random(seed)
    picks = rng.sample(range(crm_size), min(crm_size, 2_000))
    customers = [contact_person(c) for c in picks]
    return generate_demo_messages(
        n=n,
        seed=seed,
        internal=INTERNAL,
        customers=customers,
        start=datetime(2025, 3, 3, 8, 0, tzinfo=UTC),
        size_range=(size_kb[0] * 1000, size_kb[1] * 1000),
    )


def specs_for(messages, users: dict[str, int], tag: str):
    from capture.intake import RawSpec

    return [
        RawSpec(
            data=m.data,
            channel="import",
            user_id=users[m.internal_address],
            source=f"bench:{tag}",
            received_at=m.date,
        )
        for m in messages
    ]


def store_batch(specs, *, enqueue: bool) -> list[int]:
    """What a channel does: durable files (one syncfs per batch), rows in one transaction, queue."""
    from capture.intake import store_raw_messages

    return [r.pk for r in store_raw_messages(specs, enqueue=enqueue)]


def run_ours_inprocess(messages, users, tag: str) -> tuple[float, dict]:
    from collections import Counter

    from capture.pipeline import process_raw_messages

    specs = specs_for(messages, users, tag)
    statuses: Counter = Counter()
    meter = CpuMeter(lambda: db_backend_pids(own_only=True)).start()
    t0 = time.perf_counter()
    for i in range(0, len(specs), BATCH):
        ids = store_batch(specs[i : i + BATCH], enqueue=False)
        statuses.update(str(o.status) for o in process_raw_messages(ids))
    elapsed = time.perf_counter() - t0
    LAST_CPU[0] = meter.stop()
    return elapsed, dict(statuses)


def start_worker(workers: int) -> subprocess.Popen:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    log = open(Path(os.environ["MAILWARDEN_MEDIA_ROOT"]) / "worker.log", "wb")
    proc = subprocess.Popen(
        [
            str(REPO_ROOT / ".venv/bin/celery"),
            "-A",
            "config",
            "worker",
            "-c",
            str(workers),
            "-P",
            "prefork",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-Q",
            "celery",
            "--loglevel",
            "WARNING",
        ],
        cwd=REPO_ROOT,
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    from config.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"celery worker exited ({proc.returncode}); see {log.name}")
        if app.control.ping(timeout=0.5):
            return proc
    stop_worker(proc)
    raise RuntimeError("celery worker did not answer a ping within 60 s")


def stop_worker(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_processed(tag: str, timeout: float, ids: list[int] | None = None) -> None:
    from capture.models import RawMessage

    deadline = time.monotonic() + timeout
    pending = RawMessage.objects.filter(source=f"bench:{tag}", status=RawMessage.Status.PENDING)
    if ids:
        # By the status index and the run's id range: filtering on `source` alone scanned the
        # whole table at every poll, CPU the database then counted against the run measured.
        pending = pending.filter(pk__gte=min(ids), pk__lte=max(ids))
    # Counted up to 101 only (all the polling below needs): a full count of thousands of
    # pending rows cost ~2 ms of database CPU a poll, ~40 us a message of the run measured.
    while left := pending[:101].count():
        if time.monotonic() > deadline:
            raise RuntimeError(f"messages still pending after {timeout:.0f} s")
        # Poll finely near the end only: the clock stops at the first poll that sees none
        # pending, and polling costs the machine the workers run on.
        time.sleep(0.05 if left > 100 else 0.01)


def run_ours_celery(messages, warmup, users, workers: int, tag: str = "celery"):
    from collections import Counter

    from capture.models import RawMessage

    proc = start_worker(workers)
    try:
        # Warm the worker processes (imports, connections) outside the measurement.
        for i in range(0, len(warmup), 25):
            store_batch(specs_for(warmup[i : i + 25], users, f"{tag}-warmup"), enqueue=True)
        wait_processed(f"{tag}-warmup", 120)
        specs = specs_for(messages, users, tag)

        def everyone() -> list[int]:
            # the worker processes, every database backend, Redis; this process counts itself
            workers = [proc.pid, *child_pids(proc.pid)]
            return workers + db_backend_pids(BENCH_DB) + pids_named("redis-server")

        meter = CpuMeter(everyone).start()
        t0 = time.perf_counter()
        ids: list[int] = []
        for i in range(0, len(specs), BATCH):
            ids += store_batch(specs[i : i + BATCH], enqueue=True)
        wait_processed(tag, 600, ids)
        elapsed = time.perf_counter() - t0
        LAST_CPU[0] = meter.stop()
    finally:
        stop_worker(proc)
    statuses = Counter(
        RawMessage.objects.filter(source=f"bench:{tag}").values_list("status", flat=True)
    )
    return elapsed, dict(statuses)


def run_django_mailbox(messages, *, one_transaction: bool) -> float:
    from django.db import transaction
    from django_mailbox.models import Mailbox

    mailbox = Mailbox.objects.create(name=f"bench-{'tx' if one_transaction else 'auto'}")
    meter = CpuMeter(lambda: db_backend_pids(own_only=True)).start()
    t0 = time.perf_counter()
    if one_transaction:
        with transaction.atomic():
            for m in messages:
                mailbox.process_incoming_message(email.message_from_bytes(m.data))
    else:
        for m in messages:
            mailbox.process_incoming_message(email.message_from_bytes(m.data))
    elapsed = time.perf_counter() - t0
    LAST_CPU[0] = meter.stop()
    return elapsed


def stdlib_extract(raw: bytes) -> int:
    """Parse and pull out what a capture needs: address headers, text/HTML bodies, attachments."""
    msg = email.message_from_bytes(raw, policy=email_policy.compat32)
    found = len(getaddresses([msg.get(h, "") for h in ("from", "to", "cc", "reply-to")]))
    for part in msg.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True) or b""
        if part.get_content_maintype() == "text" and part.get_filename() is None:
            payload.decode(part.get_content_charset() or "utf-8", "replace")
        found += len(payload)
    return found


def run_parse_only(messages) -> tuple[float, float]:
    from capture.mime import parse_email
    from capture.pipeline import parse_limits

    t0 = time.perf_counter()
    for m in messages:
        stdlib_extract(m.data)
    stdlib = time.perf_counter() - t0
    limits, now = parse_limits(), datetime.now(UTC)
    t0 = time.perf_counter()
    for m in messages:
        parse_email(m.data, received_at=now, limits=limits)
    return stdlib, time.perf_counter() - t0


def use_database(url: str) -> None:
    """Point Django's default connection at another database of the same server."""
    from django.db import connections

    conn = connections["default"]
    conn.close()
    conn.settings_dict["NAME"] = url.rsplit("/", 1)[1]


def prepare_flat_database(url: str, contacts: int) -> dict[str, int]:
    """A fresh database with the schema, the internal users and `contacts` contacts."""
    from django.core.management import call_command

    recreate_database(url)
    use_database(url)
    call_command("migrate", verbosity=0)
    users = seed_users()
    seconds = grow_crm(0, contacts)
    print(f"{url.rsplit('/', 1)[1]}: {contacts:,} contacts seeded in {seconds:.1f} s", flush=True)
    return users


FLAT_ROUNDS = 3
MAIN_ROUNDS = 2


def measure_flatness(url: str, small: int, large: int, n: int, size_kb, row) -> tuple[float, float]:
    """msg/s of ours in-process with a `small` and a `large` CRM: best of FLAT_ROUNDS
    alternating runs each (another job on this shared machine only ever slows a run down;
    one short run moves by +-20% with the same code and CRM)."""
    sides = {}
    for label, contacts in (("small", small), ("large", large)):
        side_url = f"{url}_flat_{label}"
        users = prepare_flat_database(side_url, contacts)
        run_ours_inprocess(make_messages(50, 9001, contacts, size_kb), users, "warmup")
        sides[label] = (side_url, contacts, users)
    best: dict[str, tuple[float, dict, float]] = {}
    for k in range(FLAT_ROUNDS):
        for label, (side_url, contacts, users) in sides.items():
            use_database(side_url)
            seconds, statuses = run_ours_inprocess(
                make_messages(n, 4001 + 10 * k, contacts, size_kb), users, f"flat-{k}"
            )
            print(
                f"  flatness round {k + 1}, {contacts:,} contacts: {n / seconds:.1f} msg/s, "
                f"{LAST_CPU[0] * 1000 / n:.2f} CPU ms/msg",
                flush=True,
            )
            if label not in best or seconds < best[label][0]:
                best[label] = (seconds, statuses, LAST_CPU[0])
    rates = []
    for label, (_, contacts, _) in sides.items():
        seconds, statuses, LAST_CPU[0] = best[label]
        rates.append(
            row(
                f"ours in-process, {contacts:,} contacts",
                n,
                seconds,
                f"{statuses} best of {FLAT_ROUNDS}",
            )
        )
    return rates[0], rates[1]


def main() -> None:
    args = bench_args(__doc__, configure=configure)
    n = args.messages or (600 if args.quick else 3_000)
    flat_n = args.flat_messages or (400 if args.quick else 2_000)
    flat_large = args.flat_large or (100_000 if args.quick else 1_000_000)
    lo, _, hi = args.size_kb.partition("-")
    size_kb = (int(lo), int(hi or lo))
    url = bench_database_url(args.database_url, BENCH_DB)
    media = Path(tempfile.mkdtemp(prefix="mailwarden-bench-"))
    print(f"database {BENCH_DB}, media {media}, broker {REDIS_URL}", flush=True)
    recreate_database(url)
    prepare_environment(url, media)
    django_setup(url)
    from django.core.management import call_command

    t0 = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"migrated in {time.perf_counter() - t0:.1f} s", flush=True)
    users = seed_users()

    rows: list[tuple] = []

    cpu: dict[str, float] = {}

    def row(name: str, count: int, seconds: float, note: str = "", *, measured=True) -> float:
        """One result row; `measured`: the run just made set LAST_CPU (CPU ms per message)."""
        rate = count / seconds if seconds else 0.0
        ms = LAST_CPU[0] * 1000 / count if measured and count else 0.0
        LAST_CPU[0] = 0.0
        cpu[name] = ms
        rows.append(
            (name, count, f"{seconds:.2f}", f"{rate:.1f}", f"{ms:.2f}" if ms else "-", note)
        )
        print(
            f"  {name}: {count} in {seconds:.2f} s = {rate:.1f} msg/s, {ms:.2f} CPU ms/msg {note}",
            flush=True,
        )
        return rate

    contacts = 0
    # Main runs on the full CRM.
    seconds = grow_crm(contacts, args.contacts)
    contacts = max(contacts, args.contacts)
    print(f"CRM: {contacts} contacts ({seconds:.1f} s to grow)", flush=True)
    t0 = time.perf_counter()
    main_set = make_messages(n, 2001, contacts, size_kb)
    inproc_set = make_messages(n, 2002, contacts, size_kb)
    warm_set = make_messages(50, 2003, contacts, size_kb)
    sizes = sorted(len(m.data) for m in main_set)
    with_att = sum(b"filename=" in m.data for m in main_set)
    print(
        f"generated {3 * n} messages in {time.perf_counter() - t0:.1f} s; sizes median "
        f"{sizes[len(sizes) // 2] / 1000:.1f} KB, mean {sum(sizes) / len(sizes) / 1000:.1f} KB, "
        f"{with_att} of {n} with an attachment",
        flush=True,
    )
    run_ours_inprocess(make_messages(50, 9001, contacts, size_kb), users, "warmup")
    stdlib_s, ours_parse_s = run_parse_only(main_set)
    parse_rate = row("stdlib parse-only (compat32, 1 core)", n, stdlib_s, "ceiling", measured=False)
    row("capture.mime.parse_email only (1 core)", n, ours_parse_s, measured=False)
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    inproc_s, inproc_st = run_ours_inprocess(inproc_set, users, "inprocess")
    if args.profile:
        profiler.disable()
        profiler.dump_stats(args.profile)
    row("ours in-process, 1 thread", n, inproc_s, str(inproc_st))
    # The ratio's three runs, MAIN_ROUNDS times in alternation on fresh mail (ours would
    # otherwise only dedupe the second time), each side taking its fastest round: another job
    # on this shared machine only ever slows a run down, and a single run moved by +-25% (for
    # django-mailbox as for ours) with the same code.
    ours_name = f"ours end to end, Celery -c {args.workers}"
    dm_auto_name = "django-mailbox as deployed (autocommit)"
    dm_tx_name = "django-mailbox in one transaction"
    best: dict[str, tuple[float, str, float]] = {}

    def keep(name: str, seconds: float, note: str = "") -> None:
        print(
            f"  round {k + 1}, {name}: {n / seconds:.1f} msg/s, "
            f"{LAST_CPU[0] * 1000 / n:.2f} CPU ms/msg {note}",
            flush=True,
        )
        if name not in best or seconds < best[name][0]:
            best[name] = (seconds, note, LAST_CPU[0])

    for k in range(MAIN_ROUNDS):
        round_set = main_set if k == 0 else make_messages(n, 2001 + 100 * k, contacts, size_kb)
        round_warm = warm_set if k == 0 else make_messages(50, 2003 + 100 * k, contacts, size_kb)
        celery_s, celery_st = run_ours_celery(
            round_set, round_warm, users, args.workers, tag=f"celery-{k}"
        )
        keep(ours_name, celery_s, str(celery_st))
        keep(dm_auto_name, run_django_mailbox(round_set, one_transaction=False))
        keep(dm_tx_name, run_django_mailbox(round_set, one_transaction=True))
    rates = {}
    for name in (ours_name, dm_auto_name, dm_tx_name):
        seconds, note, LAST_CPU[0] = best[name]
        rates[name] = row(name, n, seconds, f"{note} best of {MAIN_ROUNDS}".strip())
    ours_rate, dm_auto, dm_tx = rates[ours_name], rates[dm_auto_name], rates[dm_tx_name]

    # Flatness: the same in-process run on a small and on a large CRM, each in a fresh
    # database of its own (so both have stored the same mail: the threading and dedupe
    # lookups grow with stored mail, which is not what this ratio is about), run in
    # alternation so a drift of the shared machine hits both sides alike.
    rate_small, rate_large = measure_flatness(
        url, args.flat_small, flat_large, flat_n, size_kb, row
    )
    use_database(url)

    print()
    print_table(("run", "messages", "seconds", "msg/s", "CPU ms/msg", "outcome"), rows)
    ratio = ours_rate / dm_auto if dm_auto else 0.0
    print(
        f"\nours/django-mailbox autocommit = {ratio:.2f} (target >= 10); ours/one transaction = "
        f"{ours_rate / dm_tx:.2f} (target >= 3); flat {rate_large / rate_small:.2f} (target >= 0.9)"
    )
    # result_line prints key=value only; this line also carries two more targets (key>=value).
    line = _format_figure
    print(
        f"RESULT ingest ratio={ratio:.3f} target>=10 ours_msg_s={line(round(ours_rate, 1))} "
        f"dm_autocommit_msg_s={line(round(dm_auto, 1))} dm_one_tx_msg_s={line(round(dm_tx, 1))} "
        f"ratio_one_tx={ours_rate / dm_tx:.3f} target_one_tx>=3 "
        f"parse_only_msg_s={line(round(parse_rate, 1))} "
        f"flat_ratio={rate_large / rate_small:.3f} target_flat>=0.9 "
        f"ours_cpu_ms_msg={cpu[ours_name]:.2f} dm_autocommit_cpu_ms_msg={cpu[dm_auto_name]:.2f} "
        f"dm_one_tx_cpu_ms_msg={cpu[dm_tx_name]:.2f}",
        flush=True,
    )
    shutil.rmtree(media, ignore_errors=True)


if __name__ == "__main__":
    main()
