"""Webhooks benchmark: ingest end to end (store raw → Celery worker → processed) with three
active outbound webhook subscriptions against none, in the same run on the same CRM.

The subscriptions want every event type, so each captured message writes a `message.logged`
outbox row per subscription (and each contact the pipeline creates a `contact.created` one)
in the batch's transaction. A receiver (a separate process: http.server on loopback, 204)
takes the deliveries, which a delivery worker sends *while* capture runs: capture workers
`-Q celery -c 2`, a delivery worker `-Q webhooks -c 1` (MAILWARDEN_WEBHOOKS_QUEUE, the
recommended production set-up). The ratio is capture msg/s with subscriptions over msg/s
without (best of the rounds, alternating ABAB on fresh mail); the run also checks that every
outbox row was delivered, and prints the drain time and the delivery rate.

Uses its own database `mailwarden_bench_webhooks` (dropped and re-created) on the server of
--database-url / $DATABASE_URL / the default local PostgreSQL, and Redis db 13 (flushed).
--quick: 10k contacts, 2 rounds of 500 messages a side; the full run: 100k contacts,
3 rounds of 3,000 messages a side.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MAILWARDEN_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPO_ROOT,
    bench_args,
    bench_database_url,
    django_setup,
    print_table,
    recreate_database,
    result_line,
)
from ingest import (
    BATCH,
    REDIS_URL,
    grow_crm,
    make_messages,
    prepare_environment,
    seed_users,
    specs_for,
    store_batch,
    wait_processed,
)

BENCH_DB = "mailwarden_bench_webhooks"
SUBSCRIPTIONS = 3
RECEIVER = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def configure(parser) -> None:
    parser.add_argument("--messages", type=int, default=None, help="messages per round")
    parser.add_argument("--contacts", type=int, default=None, help="CRM contacts")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per side")


def start_receiver() -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def start_worker(queue: str, concurrency: int, log_name: str) -> subprocess.Popen:
    log = open(Path(os.environ["MAILWARDEN_MEDIA_ROOT"]) / log_name, "wb")
    return subprocess.Popen(
        [str(REPO_ROOT / ".venv/bin/celery"), "-A", "config", "worker", "-Q", queue,
         "-c", str(concurrency), "-P", "prefork", "-n", f"{queue}@%h", "--without-heartbeat",
         "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
        cwd=REPO_ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_workers(count: int) -> None:
    from config.celery import app

    deadline = time.monotonic() + 90
    while len(app.control.ping(timeout=0.5) or []) < count:
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not answer a ping within 90 s")


def set_subscriptions(active: bool) -> None:
    from governance.models import WebhookSubscription

    WebhookSubscription.objects.update(enabled=active)


def run_capture(messages, users, tag: str) -> float:
    specs = specs_for(messages, users, tag)
    t0 = time.perf_counter()
    ids: list[int] = []
    for i in range(0, len(specs), BATCH):
        ids += store_batch(specs[i : i + BATCH], enqueue=True)
    wait_processed(tag, 600, ids)
    return time.perf_counter() - t0


def wait_drained(timeout: float = 600) -> tuple[float, int]:
    """Seconds until no delivery is pending; how many were delivered in all."""
    from governance.models import WebhookDelivery

    t0 = time.perf_counter()
    pending = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING)
    while pending.exists():
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"{pending.count()} deliveries still pending after {timeout} s")
        time.sleep(0.05)
    return time.perf_counter() - t0, WebhookDelivery.objects.count()


def main() -> None:
    args = bench_args(__doc__, configure=configure)
    n = args.messages or (500 if args.quick else 3_000)
    contacts = args.contacts or (10_000 if args.quick else 100_000)
    rounds = args.rounds or (2 if args.quick else 3)
    url = bench_database_url(args.database_url, BENCH_DB)
    media = Path(tempfile.mkdtemp(prefix="mailwarden-bench-webhooks-"))
    recreate_database(url)
    prepare_environment(url, media)
    os.environ["MAILWARDEN_WEBHOOKS_ALLOW_PRIVATE"] = "true"  # the receiver is on loopback
    os.environ["MAILWARDEN_WEBHOOKS_QUEUE"] = "webhooks"
    django_setup(url)
    import redis
    from django.core.management import call_command

    from governance.models import WebhookDelivery
    from governance.outbound.events import EVENT_TYPE_NAMES
    from governance.outbound.subscriptions import create_subscription

    call_command("migrate", verbosity=0)
    users = seed_users()
    print(f"CRM: {contacts:,} contacts seeded in {grow_crm(0, contacts):.1f} s", flush=True)
    receiver, port = start_receiver()
    for k in range(SUBSCRIPTIONS):
        create_subscription(
            name=f"bench-{k}",
            url=f"http://127.0.0.1:{port}/hook/{k}",
            event_types=sorted(EVENT_TYPE_NAMES),
            actor="bench",
        )
    redis.Redis.from_url(REDIS_URL).flushdb()
    capture = start_worker("celery", 2, "capture-worker.log")
    delivery = start_worker("webhooks", 1, "delivery-worker.log")
    rates: dict[str, list[float]] = {"none": [], "3 subscriptions": []}
    drains: list[tuple[float, int]] = []
    try:
        wait_workers(2)
        set_subscriptions(False)
        run_capture(make_messages(50, 9001, contacts, (5, 50)), users, "warmup")
        seed = 3000
        for k in range(rounds):
            for side in ("3 subscriptions", "none") if k % 2 else ("none", "3 subscriptions"):
                seed += 1
                set_subscriptions(side != "none")
                before = WebhookDelivery.objects.count()
                messages = make_messages(n, seed, contacts, (5, 50))
                seconds = run_capture(messages, users, f"{side[:4]}-{k}")
                rates[side].append(n / seconds)
                note = ""
                if side != "none":
                    drain, total = wait_drained()
                    drains.append((drain, total - before))
                    note = f", {total - before} deliveries, drained {drain:.1f} s after capture"
                print(f"  round {k + 1}, {side}: {n / seconds:.1f} msg/s{note}", flush=True)
    finally:
        stop(capture)
        stop(delivery)
        stop(receiver)
    undelivered = WebhookDelivery.objects.exclude(status=WebhookDelivery.Status.DELIVERED).count()
    with_subs, without = max(rates["3 subscriptions"]), max(rates["none"])
    rows = [(side, f"{max(r):.1f}", " ".join(f"{x:.1f}" for x in r)) for side, r in rates.items()]
    print()
    print_table(("capture", "best msg/s", "rounds msg/s"), rows)
    deliveries = sum(d for _, d in drains)
    print(
        f"\n{deliveries} deliveries to {SUBSCRIPTIONS} subscriptions, {undelivered} not delivered; "
        f"each round's queue drained {max(d for d, _ in drains):.1f} s at most after its capture",
        flush=True,
    )
    shutil.rmtree(media, ignore_errors=True)
    if undelivered:
        raise SystemExit(f"{undelivered} deliveries were not delivered")
    result_line(
        "webhooks",
        with_subs / without,
        ">=0.9",
        with_msg_s=round(with_subs, 1),
        without_msg_s=round(without, 1),
        deliveries=deliveries,
        undelivered=undelivered,
    )


if __name__ == "__main__":
    main()
