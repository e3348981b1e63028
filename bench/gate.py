"""Gate benchmark: the pipeline in-process with governance on — privacy mode, 10k never-log
rules (org-wide and personal, addresses and domains) and 1M contacts with consent histories —
against the same pipeline with governance off, on the same messages in the same run
(--quick: 20k contacts).

The mail is capture/demo.py's (as bench/ingest.py: 5-50 KB, threads of replies) between four
internal users and 2,000 customers drawn from the CRM. Every contact has a consent history of
1-3 rows (a basis granted, sometimes withdrawn later, tracking consent for some); of the mail's
customers ~88% have a current basis, ~5% withdrew and ~7% never had one (--no-basis,
--withdrawn), so under privacy mode some participants are not linked and some messages are
stored metadata-only, which is cheaper; `--no-basis 0 --withdrawn 0` measures the gate's
cost alone (every message stored in full). No
never-log rule matches the mail (a refused message would be cheaper, not dearer).

"Governance off" is the pipeline as it ran before the gate knew consent: privacy mode off, no
never-log rules, and the batch's consent lookup skipped (the history is append-only, so the
rows stay; the lookup is patched out for that side). Each round processes the same messages
(Message-IDs re-tagged per round, so nothing dedupes) with governance on and off in ABBA
order; each side keeps its best round. The ratio is msg/s on over msg/s off, on CPU seconds
(this process and its PostgreSQL backend); the wall-time ratio is printed too.

Uses its own database `mailwarden_bench_gate` (dropped and re-created) on the server of
--database-url / $DATABASE_URL / the default local PostgreSQL.
"""

from __future__ import annotations

import random
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
from ingest import contact_person, grow_crm, prepare_environment, seed_users
from linking import mail_for, retag, run

BENCH_DB = "mailwarden_bench_gate"
SEED = 7100  # linking.mail_for draws the mail's customers with this seed
RULES = 10_000
BASES = (
    "consent",
    "contract",
    "legitimate_interest_prospect",
    "legitimate_interest_customer",
    "legal_obligation",
)


def configure(parser) -> None:
    parser.add_argument("--messages", type=int, default=None, help="messages per round")
    parser.add_argument("--contacts", type=int, default=None, help="CRM contacts")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (each side once)")
    parser.add_argument("--profile", default="", help="write a cProfile of a governed run")
    parser.add_argument(
        "--no-basis", type=float, default=0.07, help="share of contacts without any basis"
    )
    parser.add_argument(
        "--withdrawn", type=float, default=0.05, help="share of contacts who withdrew consent"
    )


def seed_consent(contacts: int, no_basis: float, withdrawn: float) -> tuple[float, int]:
    """COPY a consent history for every contact; returns (seconds, rows)."""
    from django.db import connection, transaction

    t0 = time.perf_counter()
    rng = random.Random(SEED + 1)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = 0
    with transaction.atomic(), connection.cursor() as cur:
        with cur.cursor.copy(
            "COPY governance_consentrecord (id, contact_id, purpose, basis, action,"
            " effective_at, recorded_at, recorded_by_label, channel, source, evidence_text,"
            " evidence_file) FROM STDIN"
        ) as cp:
            for c in range(contacts):
                draw = rng.random()
                if draw < no_basis:
                    continue  # never had a basis
                when = start + timedelta(days=rng.randrange(300))
                entries = [("processing", BASES[c % len(BASES)], "granted", when)]
                if draw < no_basis + withdrawn:  # withdrew later
                    entries.append(("processing", "consent", "withdrawn", when + timedelta(30)))
                if rng.random() < 0.3:
                    action = "granted" if rng.random() < 0.7 else "refused"
                    entries.append(("tracking", "consent", action, when + timedelta(1)))
                for purpose, basis, action, at in entries:
                    rows += 1
                    row = (rows, c + 1, purpose, basis, action, at, at, "bench", "import")
                    cp.write_row((*row, "", "", ""))
        cur.execute(
            "SELECT setval(pg_get_serial_sequence('governance_consentrecord', 'id'),"
            " (SELECT max(id) FROM governance_consentrecord))"
        )
    with connection.cursor() as cur:
        cur.execute("VACUUM (ANALYZE) governance_consentrecord")
    return time.perf_counter() - t0, rows


def seed_rules(n: int, contacts: int, customers: set[int], users: dict[str, int]) -> list[tuple]:
    """n never-log rules as rows (kind, value, user id): 60% org-wide addresses of CRM contacts
    the mail never names, 20% org-wide domains, 20% personal addresses and domains."""
    rng = random.Random(SEED + 2)
    out: dict[tuple, None] = {}
    user_ids = sorted(users.values())
    while len(out) < n:
        k = len(out) % 5
        if k < 3:
            c = rng.randrange(contacts)
            if c in customers:
                continue
            out[("address", contact_person(c)[1], None)] = None
        elif k == 3:
            out[("domain", f"blocked-{rng.randrange(10**9)}.example", None)] = None
        else:
            user = user_ids[rng.randrange(len(user_ids))]
            if rng.random() < 0.5:
                out[("address", f"private{rng.randrange(10**9)}@home.example", user)] = None
            else:
                out[("domain", f"family-{rng.randrange(10**9)}.example", user)] = None
    return list(out)


def governance(on: bool, rules: list[tuple]) -> None:
    """Switch the governed side on or off: privacy mode, never-log rules, consent lookup."""
    import capture.context
    from governance.consent import current_bases
    from governance.models import NeverLogRule, OrgSettings

    org = OrgSettings.load()
    org.privacy_mode = on
    org.save()
    NeverLogRule.objects.all().delete()
    if on:
        NeverLogRule.objects.bulk_create(
            [NeverLogRule(kind=k, value=v, user_id=u) for k, v, u in rules], batch_size=2000
        )
    capture.context.current_bases = current_bases if on else (lambda ids: {})


def main() -> None:
    args = bench_args(__doc__, configure=configure)
    quick = args.quick
    n = args.messages or (300 if quick else 1_000)
    contacts = args.contacts or (20_000 if quick else 1_000_000)
    rounds = args.rounds or (2 if quick else 3)
    url = bench_database_url(args.database_url, BENCH_DB)
    media = Path(tempfile.mkdtemp(prefix="mailwarden-bench-gate-"))
    print(f"database {BENCH_DB}, media {media}", flush=True)
    recreate_database(url)
    prepare_environment(url, media)
    django_setup(url)
    from django.core.management import call_command
    from django.utils import timezone

    from capture.models import EmailMessage, Participant

    call_command("migrate", verbosity=0)
    users = seed_users()
    print(f"{contacts:,} contacts seeded in {grow_crm(0, contacts):.1f} s", flush=True)
    seconds, rows = seed_consent(contacts, args.no_basis, args.withdrawn)
    print(f"{rows:,} consent rows seeded in {seconds:.1f} s", flush=True)
    customers = set(random.Random(SEED).sample(range(contacts), min(contacts, 2_000)))
    rules = seed_rules(RULES, contacts, customers, users)
    messages = mail_for(n, SEED, contacts)
    started = timezone.now()
    tag = started.strftime("%H%M%S")
    governance(True, rules)
    run(retag(messages, f"warm{tag}"), users, f"warm{tag}")  # blobs stored, caches warm
    if args.profile:
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
        run(retag(messages, f"p{tag}"), users, f"p{tag}")
        profile.disable()
        profile.dump_stats(args.profile)
    order = []
    for k in range(rounds):
        order += ["on", "off"] if k % 2 == 0 else ["off", "on"]
    best: dict[str, tuple[float, float]] = {}
    shapes: dict[str, dict] = {}
    for k, side in enumerate(order):
        governance(side == "on", rules)
        round_tag = f"r{k}{tag}"
        wall, cpu, statuses = run(retag(messages, round_tag), users, round_tag)
        emails = EmailMessage.objects.filter(first_raw__source=f"bench:{round_tag}")
        shape = {
            **statuses,
            "metadata_only": emails.filter(stored="metadata").count(),
            "suppressed": Participant.objects.filter(email__in=emails, match="suppressed").count(),
        }
        shapes[side] = shape
        print(
            f"  governance {side}: {n / wall:.1f} msg/s, {cpu * 1000 / n:.2f} CPU ms/msg {shape}",
            flush=True,
        )
        prev = best.get(side, (wall, cpu))
        best[side] = (min(prev[0], wall), min(prev[1], cpu))
    on_wall, on_cpu = best["on"]
    off_wall, off_cpu = best["off"]
    print_table(
        ("run", "msg/s (wall)", "CPU ms/msg"),
        [
            ("governance on", n / on_wall, on_cpu * 1000 / n),
            ("governance off", n / off_wall, off_cpu * 1000 / n),
        ],
    )
    result_line(
        "gate",
        off_cpu / on_cpu,
        ">=0.9",
        wall_ratio=round(off_wall / on_wall, 3),
        on_cpu_ms=round(on_cpu * 1000 / n, 2),
        off_cpu_ms=round(off_cpu * 1000 / n, 2),
        messages=n,
        contacts=contacts,
        consent_rows=rows,
        never_log_rules=len(rules),
        suppressed=shapes["on"]["suppressed"],
        metadata_only=shapes["on"]["metadata_only"],
    )


if __name__ == "__main__":
    main()
