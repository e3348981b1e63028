"""Tracking benchmark: open-pixel requests per second through the real WSGI server against a
bare Django view answering 204 on the same server, in the same run.

The server is the Procfile's `web` process (gunicorn, its sync workers, WEB_CONCURRENCY=2,
access log on) with DJANGO_DEBUG off, started from the Procfile's own command line; a
settings module (bench/_tracking_site.py) adds the bare view to the project's routes, so both
go through the same middleware. The pixel request checks the signed token, classifies the
user agent and address, and hands its open to the worker's buffer, whose thread writes the
batch every ~200 ms with one INSERT that re-checks consent per event (the tracked message has a
contact with a consent history); the thread's CPU and its PostgreSQL backend count on the
side of the slice they fall in (the last batch of a pixel slice, up to ~200 ms of its opens, is
written at the start of the next slice: a few ms of CPU against a slice's 600). After the load, every answered open must be in the table (the workers write
their buffers as gunicorn stops them): the run fails otherwise.

The load generator is one asyncio process (no extra tool): C connections in flight, each
request on a new connection when the server closes it (sync workers do), `Connection:
keep-alive` otherwise. Load alternates between pixel and bare in short time slices (ABBA
order), so other jobs on a shared machine weigh on both sides alike; the ratio is pixel req/s
over bare req/s summed over their slices. CPU seconds per request of the gunicorn workers and
their PostgreSQL backends are printed too (cpu_ratio: bare CPU per request over pixel's).

--quick: 24 slices of 0.6 s (~15 s of load), 30k consent rows. Full: 120 slices of 1 s, the
events table pre-filled with 1M rows (its indexes grow with it), 3M consent rows (1M contacts).

Uses its own database `mailwarden_bench_tracking` (dropped and re-created) on the server of
--database-url / $DATABASE_URL / the default local PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPO_ROOT,
    CpuMeter,
    bench_args,
    bench_database_url,
    child_pids,
    django_setup,
    print_table,
    recreate_database,
    result_line,
)

BENCH_DB = "mailwarden_bench_tracking"
BENCH_DIR = Path(__file__).resolve().parent
AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"


def configure(parser) -> None:
    parser.add_argument("--slices", type=int, default=None, help="time slices (half each side)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per slice")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--prefill", type=int, default=None, help="events already stored")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="run gunicorn's gthread workers with this many threads (not the Procfile's)",
    )


def web_command(port: int, workers: int) -> list[str]:
    """The Procfile's `web` line with its ${VAR:-default} filled in."""
    line = next(
        ln.split(":", 1)[1]
        for ln in (REPO_ROOT / "Procfile").read_text().splitlines()
        if ln.startswith("web:")
    )
    values = {
        "MAILWARDEN_WEB_HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
    }
    line = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: values.get(m[1], m[2]), line)
    argv = shlex.split(line)
    argv[0] = str(Path(sys.executable).parent / argv[0])
    return argv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(prefill: int, consents: int) -> str:
    """A tracked message with a contact and its consent history; returns the pixel path."""
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from capture.models import TrackedContact, TrackedMessage, TrackingEvent
    from capture.tracking import tokens
    from crm.models import Contact, User
    from governance.consent import record_consent
    from governance.models import ConsentRecord

    user = User.objects.create(username="bench", email="bench@ourco.test")
    contact = Contact.objects.create(first_name="Ann", last_name="Client")
    for basis in ("legitimate_interest_prospect", "contract"):
        record_consent(contact.pk, basis=basis, channel="admin")
    record_consent(contact.pk, purpose="tracking", basis="consent", channel="admin")
    now = timezone.now()
    tracked = TrackedMessage.objects.create(
        message_id="bench@ourco.test",
        sender=user,
        mode="recipient",
        issued_at=now - timedelta(hours=1),
        expires_at=now + timedelta(days=30),
    )
    TrackedContact.objects.create(tracked=tracked, contact=contact)
    with connection.cursor() as cur:
        # other contacts' consent histories (3 rows each), so the re-check reads an index of
        # a table with some size, as in production
        consent = ConsentRecord._meta.db_table
        cur.execute(
            f"INSERT INTO {consent} (contact_id, purpose, basis, action, effective_at, "  # noqa: S608
            "recorded_at, recorded_by_label, channel, source, evidence_text, evidence_file) "
            "SELECT 1000 + g / 3, CASE WHEN g %% 3 = 2 THEN 'tracking' ELSE 'processing' END, "
            "CASE WHEN g %% 3 = 0 THEN 'contract' ELSE 'consent' END, "
            "CASE WHEN g %% 3 = 1 THEN 'withdrawn' ELSE 'granted' END, "
            "now() - g * interval '1 minute', now(), 'bench', 'import', '', '', '' "
            "FROM generate_series(1, %s) g",
            [consents],
        )
        cur.execute(f"ANALYZE {consent}")
    if prefill:
        with connection.cursor() as cur:
            cur.execute(
                f"INSERT INTO {TrackingEvent._meta.db_table} (tracked_id, kind, occurred_at, "  # noqa: S608
                "machine, machine_reason, user_agent) SELECT %s, 'open', "
                "now() - g * interval '1 second', false, '', %s FROM generate_series(1, %s) g",
                [tracked.pk, AGENT, prefill],
            )
            cur.execute(f"ANALYZE {TrackingEvent._meta.db_table}")
    issued = int(tracked.issued_at.timestamp())
    return f"/t/o/{tokens.make_open_token(tracked.pk, issued, issued + 86400 * 30)}"


# --- the load generator --------------------------------------------------------------------


async def _one_connection(port: int, path: str, stop: float, counts: list[int]) -> None:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {AGENT}\r\n"
        "Accept: */*\r\n\r\n"
    ).encode()
    reader = writer = None
    while time.perf_counter() < stop:
        if writer is None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length:
            await reader.readexactly(length)
        if status in (200, 204):
            counts[0] += 1
        else:
            counts[1] += 1
        if close:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _load(port: int, path: str, seconds: float, concurrency: int) -> tuple[int, int]:
    counts = [0, 0]
    stop = time.perf_counter() + seconds
    await asyncio.gather(*(_one_connection(port, path, stop, counts) for _ in range(concurrency)))
    return counts[0], counts[1]


def run_round(port, path, seconds, concurrency, server_pid) -> dict:
    from _common import db_backend_pids

    meter = CpuMeter(lambda: child_pids(server_pid) + db_backend_pids(BENCH_DB), own=False)
    meter.start()
    t0 = time.perf_counter()
    ok, bad = asyncio.run(_load(port, path, seconds, concurrency))
    wall = time.perf_counter() - t0
    cpu = meter.stop()
    return {"ok": ok, "bad": bad, "wall": wall, "cpu": cpu}


def _totals(rounds: list[dict]) -> tuple[float, float, int]:
    """(req/s, CPU ms per request, requests) over these slices."""
    ok = sum(r["ok"] for r in rounds)
    wall = sum(r["wall"] for r in rounds)
    cpu = sum(r["cpu"] for r in rounds)
    return ok / wall if wall else 0.0, 1000 * cpu / max(ok, 1), ok


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not start")


def main() -> None:
    args = bench_args(__doc__, configure=configure)
    slices = args.slices or (24 if args.quick else 120)
    seconds = args.seconds or (0.6 if args.quick else 1.0)
    prefill = args.prefill if args.prefill is not None else (0 if args.quick else 1_000_000)
    url = bench_database_url(args.database_url, BENCH_DB)
    recreate_database(url)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "bench-" + secrets.token_hex(16),
        "MAILWARDEN_LOG_LEVEL": "WARNING",
    }
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "DJANGO_DEBUG", "DJANGO_SECRET_KEY")})
    django_setup(url)
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    pixel = seed(prefill, 30_000 if args.quick else 3_000_000)
    connection.close()

    port = free_port()
    env["DJANGO_SETTINGS_MODULE"] = "_tracking_site"
    env["PYTHONPATH"] = os.pathsep.join([str(BENCH_DIR), str(REPO_ROOT)])
    command = web_command(port, args.workers)
    if args.threads:
        command += ["--worker-class", "gthread", "--threads", str(args.threads)]
    proc = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(os.environ.get("BENCH_TRACKING_LOG", os.devnull), "w"),
        start_new_session=True,
    )
    results: dict[str, list[dict]] = {"pixel": [], "bare": []}
    try:
        wait_ready(port, proc)
        warmup = run_round(port, pixel, 2.0, args.concurrency, proc.pid)  # imports, connections
        run_round(port, "/bench/204", 2.0, args.concurrency, proc.pid)
        order = ["pixel", "bare", "bare", "pixel"]  # ABBA, repeated
        for i in range(slices):
            side = order[i % 4]
            path = pixel if side == "pixel" else "/bench/204"
            r = run_round(port, path, seconds, args.concurrency, proc.pid)
            if r["bad"]:
                raise SystemExit(f"{r['bad']} requests of {side} were not answered 200/204")
            results[side].append(r)
            if (i + 1) % 4 == 0:
                done = {k: _totals(v) for k, v in results.items()}
                print(
                    f"after {i + 1} slices: pixel {done['pixel'][0]:.0f} req/s, "
                    f"bare {done['bare'][0]:.0f} req/s",
                    flush=True,
                )
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()

    django_setup(url)
    from capture.models import TrackingEvent

    recorded = TrackingEvent.objects.count() - prefill
    sent = warmup["ok"] + sum(r["ok"] for r in results["pixel"])
    totals = {side: _totals(rs) for side, rs in results.items()}
    print_table(
        ["view", "req/s", "CPU ms/req (server + db)", "requests"],
        [
            [side, round(totals[side][0]), round(totals[side][1], 3), totals[side][2]]
            for side in ("pixel", "bare")
        ],
    )
    # every answered pixel is recorded once the workers have exited (the buffer is written at
    # exit); fewer would mean events lost, more is impossible (each request adds one)
    print(f"opens recorded: {recorded} of {sent} pixel requests answered (warm-up included)")
    ratio = totals["pixel"][0] / totals["bare"][0]
    result_line(
        "tracking",
        ratio,
        ">=0.6",
        pixel_rps=round(totals["pixel"][0]),
        bare_rps=round(totals["bare"][0]),
        cpu_ratio=totals["bare"][1] / totals["pixel"][1],
        workers=args.workers,
        threads=args.threads or "sync",
        concurrency=args.concurrency,
        prefill=prefill,
    )
    if recorded != sent:
        raise SystemExit(f"{sent - recorded} answered opens were not recorded")


if __name__ == "__main__":
    main()
