"""Admin pages at scale: every changelist (first page, then one choice of each of its
filters) and a change page of the big tables, at 1,000 messages and at a million.

Data (bulk SQL, `INSERT ... SELECT ... FROM generate_series`, cloned from one valid row of
each table made through the ORM, so the admin renders them): N messages in threads of two,
each with its raw message (statuses and channels in turn, one in 50 rejected with a reason),
5 participants per message, 2 audit events per message; then VACUUM ANALYZE. Measured, as a
logged-in superuser through the Django test client: the median of R requests after a
warm-up, for each page. The ratio is the worst page's big/small time (target <= 3).

The peer: Django admin defaults on the same tables — a plain ModelAdmin with the same
list_display/list_filter fields and no tuning (full COUNTs, <select> of every row for a
foreign key), registered on a throwaway AdminSite — printed with its own ratio.

Full run: 1,000 then 1,000,000 messages / 5,000,000 participants / 2,000,000 audit events
(seeding takes several minutes; the peer's change pages render a <select> of every thread and
raw message, so they take long). --quick: 1,000 then 100,000 / 500,000 / 200,000. Uses its
own database `mailwarden_bench_admin_pages` (dropped and re-created).
"""

from __future__ import annotations

import re
import statistics
import sys
import time
import types
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

BENCH_DB = "mailwarden_bench_admin_pages"
SLOW_MS = 3_000
TABLES = ("capture.rawmessage", "capture.emailmessage", "capture.thread", "governance.auditevent")


def configure(parser) -> None:
    parser.add_argument("--big", type=int, default=None, help="messages at the big size")
    parser.add_argument("--small", type=int, default=1_000, help="messages at the small size")
    parser.add_argument("--rounds", type=int, default=3, help="requests per page")


def _clone(model, seed_pk: int, count: int, overrides: dict[str, str]) -> None:
    """INSERT `count` copies of row `seed_pk` of `model`, with SQL expressions (over the
    series value g, 1..count) for the columns in `overrides`."""
    from django.db import connection

    table = model._meta.db_table
    cols = [f.column for f in model._meta.concrete_fields if not f.primary_key]
    select = [overrides.get(c, f't."{c}"') for c in cols]
    names = ", ".join(f'"{c}"' for c in cols)
    # columns and expressions of this script only, no input
    values = ", ".join(select)
    sql = f'INSERT INTO "{table}" ({names}) SELECT {values} FROM "{table}" t, generate_series(1, %s) g WHERE t.id = %s'  # noqa: S608
    with connection.cursor() as cur:
        cur.execute(sql, [count, seed_pk])


def _max_id(model) -> int:
    from django.db.models import Max

    return model.objects.aggregate(m=Max("pk"))["m"] or 0


def seed(n_messages: int, seeds: dict) -> None:
    """Grow the tables to n_messages messages (and their threads, raw rows, participants and
    audit events) by cloning the seed rows."""
    from django.db import connection

    from capture.models import EmailMessage, Participant, RawMessage, Thread
    from governance.models import AuditEvent

    have = EmailMessage.objects.count()
    add = n_messages - have
    if add <= 0:
        return
    t0 = _max_id(Thread)
    _clone(
        Thread,
        seeds["thread"],
        (add + 1) // 2,
        {
            "subject": f"'Order ' || (g + {t0})",
            "subject_norm": f"'order ' || (g + {t0})",
            "private": "(g %% 97 = 0)",
            "last_at": "now() - (g || ' minutes')::interval",
            "first_at": "now() - (g || ' minutes')::interval",
        },
    )
    r0 = _max_id(RawMessage)
    _clone(
        RawMessage,
        seeds["raw"],
        add,
        {
            "sha256": f"lpad(to_hex(g + {r0}), 64, '0')",
            "storage_path": f"'bench/' || (g + {r0})",
            "channel": "(ARRAY['smtp','imap','api','addin','webhook','import'])[g %% 6 + 1]",
            "status": "CASE WHEN g %% 50 = 0 THEN 'rejected' ELSE 'processed' END",
            "reason_code": "CASE WHEN g %% 50 = 0 THEN 'never_log' ELSE '' END",
            "received_at": "now() - (g || ' minutes')::interval",
        },
    )
    e0 = _max_id(EmailMessage)
    _clone(
        EmailMessage,
        seeds["email"],
        add,
        {
            "message_id": f"'<' || (g + {e0}) || '@bench.example>'",
            "thread_id": f"{t0} + (g + 1) / 2",
            "subject": f"'Order ' || ((g + {e0}) / 2)",
            "date": "now() - (g || ' minutes')::interval",
            "direction": "CASE WHEN g %% 2 = 0 THEN 'in' ELSE 'out' END",
            "body_truncated": "(g %% 211 = 0)",
            "first_raw_id": f"{r0} + g",
        },
    )
    with connection.cursor() as cur:  # link each new raw row to its message
        cur.execute(
            'UPDATE "capture_rawmessage" SET email_id = %s + (id - %s) WHERE id > %s',
            [e0, r0, r0],
        )
        cur.execute('UPDATE "capture_thread" t SET message_count = 2 WHERE id > %s', [t0])
    _clone(
        Participant,
        seeds["participant"],
        add * 5,
        {
            "email_id": f"{e0} + (g + 4) / 5",
            "address": "'p' || (g %% 5000) || '@customer.example'",
            "role": "(ARRAY['from','to','cc','to','to'])[g %% 5 + 1]",
        },
    )
    _clone(
        AuditEvent,
        seeds["audit"],
        add * 2,
        {
            "created": "now() - (g || ' seconds')::interval",
            "object_id": f"({e0} + (g + 1) / 2)::text",
            "channel": "(ARRAY['smtp','imap','api','admin'])[g %% 4 + 1]",
            "actor_type": "(ARRAY['user','worker','system'])[g %% 3 + 1]",
        },
    )
    with connection.cursor() as cur:
        for table in ("capture_thread", "capture_rawmessage", "capture_emailmessage",
                      "capture_participant", "governance_auditevent"):  # fmt: skip
            cur.execute(f'VACUUM ANALYZE "{table}"')


def make_seeds() -> dict:
    from django.utils import timezone

    from capture.models import EmailMessage, Participant, RawMessage, Thread
    from governance.models import AuditEvent

    now = timezone.now()
    thread = Thread.objects.create(subject="Order 0", subject_norm="order 0", first_at=now,
                                   last_at=now, message_count=1)  # fmt: skip
    raw = RawMessage.objects.create(sha256="0" * 64, size=4000, storage_path="bench/0",
                                    channel="api", status="processed", received_at=now,
                                    processed_at=now)  # fmt: skip
    email = EmailMessage.objects.create(message_id="<0@bench.example>", thread=thread,
                                        subject="Order 0", date=now, first_raw=raw,
                                        from_address="buyer@customer.example")  # fmt: skip
    RawMessage.objects.filter(pk=raw.pk).update(email=email)
    participant = Participant.objects.create(email=email, role="from",
                                             address="buyer@customer.example")  # fmt: skip
    audit = AuditEvent.objects.create(actor_type="system", action="mail.captured",
                                      object_type="capture.emailmessage",
                                      object_id=str(email.pk), channel="api")  # fmt: skip
    return {"thread": thread.pk, "raw": raw.pk, "email": email.pk,
            "participant": participant.pk, "audit": audit.pk}  # fmt: skip


def peer_site():
    """Django admin defaults on the same tables: the same list_display/list_filter fields
    (plain model fields only), nothing else."""
    from django.apps import apps
    from django.contrib import admin

    site = admin.AdminSite(name="peer")
    for label in TABLES:
        model = apps.get_model(label)
        ours = admin.site._registry[model]
        names = {f.name for f in model._meta.concrete_fields}
        display = [f for f in ours.list_display if isinstance(f, str) and f in names]
        filters = [f for f in ours.list_filter if isinstance(f, str) and f in names]
        site.register(
            model,
            type(f"Peer{model.__name__}Admin", (admin.ModelAdmin,),
                 {"list_display": display or ["__str__"], "list_filter": filters,
                  # Django's own templates, not our per-model overrides
                  "change_list_template": "admin/change_list.html",
                  "change_form_template": "admin/change_form.html"}),
        )  # fmt: skip
    return site


def install_peer_urls(site) -> None:
    from django.conf import settings
    from django.urls import clear_url_caches, include, path

    base = __import__(settings.ROOT_URLCONF, fromlist=["urlpatterns"])
    module = types.ModuleType("bench_admin_pages_urls")
    module.urlpatterns = [path("peer-admin/", site.urls), path("", include(base.urlpatterns))]
    sys.modules[module.__name__] = module
    settings.ROOT_URLCONF = module.__name__
    clear_url_caches()


FILTER_BLOCK = re.compile(r"<details data-filter-title=.*?</details>", re.S)
HREF = re.compile(r'href="(\?[^"]*)"')


def pages(client, prefix: str) -> list[tuple[str, str]]:
    """(name, url): each table's changelist, one choice of each filter, one change page."""
    from django.apps import apps

    out = []
    for label in TABLES:
        model = apps.get_model(label)
        base = f"{prefix}{model._meta.app_label}/{model._meta.model_name}/"
        out.append((f"{model._meta.model_name} list", base))
        html = client.get(base).content.decode()
        for block in FILTER_BLOCK.findall(html):
            links = [h.replace("&amp;", "&") for h in HREF.findall(block)]
            title = re.search(r'data-filter-title="([^"]*)"', block).group(1)
            if len(links) > 1:
                out.append((f"{model._meta.model_name} ?{title}", base + links[1]))
        pk = model.objects.order_by("-pk").values_list("pk", flat=True)[:1][0]
        out.append((f"{model._meta.model_name} change", f"{base}{pk}/change/"))
    return out


def median_ms(client, url: str, rounds: int) -> float:
    t0 = time.perf_counter()
    response = client.get(url)  # warm-up
    first = (time.perf_counter() - t0) * 1000
    assert response.status_code == 200, (url, response.status_code)
    if first > SLOW_MS:  # a page this slow (the peer's <select> of every row): one more is enough
        rounds = 1
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    args = bench_args(__doc__, configure=configure)
    big = args.big or (100_000 if args.quick else 1_000_000)
    url = bench_database_url(args.database_url, BENCH_DB)
    recreate_database(url)
    django_setup(url)
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    settings.ALLOWED_HOSTS = ["*"]
    settings.DEBUG = False
    call_command("migrate", verbosity=0)
    from crm.models import User

    boss = User.objects.create_superuser("bench-boss", "boss@example.com", "pw")
    install_peer_urls(peer_site())
    client = Client()
    client.force_login(boss)

    seeds = make_seeds()
    timings: dict[str, dict[str, float]] = {}
    for size in (args.small, big):
        t0 = time.perf_counter()
        seed(size, seeds)
        print(f"seeded {size:,} messages in {time.perf_counter() - t0:.0f} s", flush=True)
        for side, prefix in (("ours", "/admin/"), ("peer", "/peer-admin/")):
            for name, page in pages(client, prefix):
                timings.setdefault(f"{side}|{name}", {})[size] = median_ms(
                    client, page, args.rounds
                )

    rows, ratios = [], {"ours": [], "peer": []}
    for key, by_size in timings.items():
        side, name = key.split("|")
        if args.small in by_size and big in by_size:
            ratio = by_size[big] / by_size[args.small]
            ratios[side].append((ratio, name, by_size[args.small], by_size[big]))
            rows.append((side, name, by_size[args.small], by_size[big], ratio))
    print_table(("admin", "page", f"ms at {args.small:,}", f"ms at {big:,}", "ratio"), rows)
    ours, peer = max(ratios["ours"]), max(ratios["peer"])
    worst_big = max(r[3] for r in ratios["ours"])
    result_line(
        "admin_pages",
        ours[0],
        "<=3",
        worst_page=ours[1],
        worst_ms_big=ours[3],
        slowest_page_ms_big=worst_big,
        peer_ratio=peer[0],
        peer_worst_page=peer[1],
        peer_worst_ms_big=peer[3],
        messages=big,
        participants=big * 5,
        audit_events=big * 2,
    )


if __name__ == "__main__":
    main()
