"""SMTP accept rate: our listener (durable group commit) vs a bare aiosmtpd sink that discards.

Both servers get the SAME client load: K client processes, each one smtplib connection
sending M messages of ~5-10 KB. Ours answers 250 only after the raw file and the row are on
disk; the sink answers 250 at once. Also
measured: the same listener with fsync per file instead of one syncfs per batch. Processing
(the pipeline) is not started: this measures accepting, which is what a sending MTA waits on.
ratio = median over rounds of (ours / sink) within the round (target >= 0.5); the RESULT line
also carries each side's best rate.

    python bench/smtp_accept.py [--quick] [--database-url postgres://...]

Uses its own database `mailwarden_bench_smtp` (dropped and re-created) on the PostgreSQL server
of --database-url / DATABASE_URL (only the server is taken from it).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import random
import shutil
import smtplib
import socket
import statistics
import string
import tempfile
import time
from pathlib import Path

from _common import (
    REPO_ROOT,
    bench_args,
    bench_database_url,
    django_setup,
    print_table,
    recreate_database,
    result_line,
)

SENDER = "bench-smtp@mailwarden-demo.com"
BENCH_DB = "mailwarden_bench_smtp"


def make_messages(n: int, seed: int) -> list[bytes]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        size = rnd.randint(5 * 1024, 10 * 1024)
        lines = []
        while sum(len(x) + 2 for x in lines) < size:
            lines.append("".join(rnd.choices(string.ascii_letters + " ", k=76)))
        body = "\r\n".join(lines)
        out.append(
            (
                f"From: Bench <{SENDER}>\r\nTo: customer{i}@example.com\r\n"
                f"Subject: bench {seed}-{i}\r\nMessage-ID: <bench-{seed}-{i}-{time.time_ns()}@mailwarden-demo.com>\r\n"
                f"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\n{body}\r\n"
            ).encode()
        )
    return out


def client(args: tuple[int, str, int, int, object]) -> int:
    """One client process: one connection, M messages; returns how many got 250."""
    port, rcpt, count, seed, barrier = args
    messages = make_messages(count, seed)
    barrier.wait()
    ok = 0
    with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
        smtp.ehlo("bench.client")
        for data in messages:
            try:
                smtp.sendmail(SENDER, [rcpt], data)
                ok += 1
            except smtplib.SMTPException:
                smtp.rset()
    return ok


def run_load(port: int, rcpt: str, k: int, m: int, round_no: int) -> tuple[float, int]:
    """K client processes x M messages against 127.0.0.1:port; returns (msg/s, accepted)."""
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(k + 1)
        with ctx.Pool(k) as pool:
            result = pool.map_async(
                client, [(port, rcpt, m, round_no * 1000 + i, barrier) for i in range(k)]
            )
            barrier.wait()
            start = time.perf_counter()
            counts = result.get(timeout=3600)
            elapsed = time.perf_counter() - start
    accepted = sum(counts)
    return accepted / elapsed, accepted


class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    args = bench_args(__doc__)
    url = bench_database_url(args.database_url, BENCH_DB)
    recreate_database(url)
    raw_dir = Path(
        tempfile.mkdtemp(
            prefix="bench-smtp-raw-",
            dir=REPO_ROOT / "var" if (REPO_ROOT / "var").is_dir() else None,
        )
    )
    os.environ["MAILWARDEN_RAW_STORAGE_DIR"] = str(raw_dir)
    # As in production: DEBUG keeps every query in memory and wraps every cursor.
    os.environ["DJANGO_DEBUG"] = "false"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-" + os.urandom(16).hex())
    django_setup(url)

    from aiosmtpd.controller import Controller
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from capture.addresses import get_or_create_capture_address
    from capture.models import RawMessage
    from capture.smtp.server import start_listener_thread
    from crm.models import User

    call_command("migrate", verbosity=0)
    # aiosmtpd logs every command at INFO; our listener turns that off when it starts. The
    # sink must not pay for it either (it runs first), or the comparison flatters us.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    settings.MAILWARDEN_SMTP_RATE_LIMIT = 10**9  # the check still runs; the bench must not hit it
    user, _ = User.objects.get_or_create(username="bench-smtp", defaults={"email": SENDER})
    rcpt = get_or_create_capture_address(user).address
    connection.close()

    # 20 connections: what Postfix opens to one destination by default
    # (default_destination_concurrency_limit).
    k, m = (20, 60) if args.quick else (20, 250)
    rounds = 1 if args.quick else 3
    print(f"database={connection.vendor} clients={k} messages_per_client={m} rounds={rounds}")

    rows = []
    best = {"sink": 0.0, "syncfs": 0.0, "fsync": 0.0}
    lost = 0
    paired: list[float] = []  # ours / sink within each round (the sides run back to back)
    try:
        for r in range(rounds):
            sink_port = free_port()
            controller = Controller(
                Sink(), hostname="127.0.0.1", port=sink_port, server_hostname="sink"
            )
            controller.start()
            try:
                rate, accepted = run_load(sink_port, rcpt, k, m, r)
            finally:
                controller.stop()
            rows.append((r, "aiosmtpd sink (discards)", accepted, rate))
            best["sink"] = max(best["sink"], rate)
            sink_rate = rate

            for mode in ("syncfs", "fsync"):
                before = RawMessage.objects.filter(user=user).count()
                listener = start_listener_thread(host="127.0.0.1", port=0, process=False, sync=mode)
                try:
                    rate, accepted = run_load(listener.port, rcpt, k, m, r)
                    stats = listener.listener.stats()
                finally:
                    listener.stop(grace=30)
                stored = RawMessage.objects.filter(user=user).count() - before
                lost += max(0, accepted - stored)
                per_batch = stats.stored / max(1, stats.batches)
                rows.append(
                    (
                        r,
                        f"capture_smtpd, {mode} + group commit ({per_batch:.1f} msg/commit)",
                        accepted,
                        rate,
                    )
                )
                best[mode] = max(best[mode], rate)
                if mode == "syncfs":
                    paired.append(rate / sink_rate if sink_rate else 0.0)
    finally:
        RawMessage.objects.filter(user=user).delete()
        shutil.rmtree(raw_dir, ignore_errors=True)

    print_table(["round", "server", "accepted", "msg/s"], rows)
    if lost:
        print(f"ERROR: {lost} messages answered 250 but not stored")
    # The median of the rounds' paired ratios: outside load moves both sides of a round alike
    # far more than it moves rounds minutes apart (as bench/audit.py does).
    ratio = statistics.median(paired) if paired else 0.0
    print("paired ratios per round: " + ", ".join(f"{r:.2f}" for r in paired))
    result_line(
        "smtp_accept",
        ratio,
        ">=0.5",
        ours_msg_s=best["syncfs"],
        sink_msg_s=best["sink"],
        fsync_per_file_msg_s=best["fsync"],
        clients=k,
        messages_per_client=m,
        lost=lost,
    )


if __name__ == "__main__":
    main()
