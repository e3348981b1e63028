"""`manage.py purge_expired [--dry-run]`: act on due messages now (docs/retention.md).

A progress bar on a terminal; plain log lines otherwise (one per committed batch)."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from capture.purge import due_queryset, purge_expired, run_niced


class Command(BaseCommand):
    help = "Purge due messages (delete into the bin, redact, anonymise, review); holds honoured."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Only show what would happen.")
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--limit", type=int, default=None, help="At most this many messages.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options) -> None:
        if options["dry_run"]:
            run = purge_expired(dry_run=True)
            self.stdout.write(
                json.dumps(
                    {"would_act": run.counts, "held": run.held, "vacuum": run.vacuumed},
                    sort_keys=True,
                )
            )
            return
        tty = sys.stderr.isatty() and not options["no_progress"]
        bar = tqdm(total=due_queryset().count(), unit="msg", file=sys.stderr, disable=not tty)

        def batch_done(n: int, size: int) -> None:
            if not tty:
                self.stdout.write(f"batch {n} committed: {size} messages")
                self.stdout.flush()

        try:
            run = run_niced(
                purge_expired,
                batch_size=options["batch_size"],
                limit=options["limit"],
                progress=bar.update,
                on_batch=batch_done,
            )
        finally:
            bar.close()
        self.stdout.write(
            json.dumps(
                {
                    "run": run.pk,
                    "counts": run.counts,
                    "held": run.held,
                    "vacuumed": run.vacuumed,
                    "files_deleted": run.files_deleted,
                    "batches_ms": run.batches_ms,
                    "duration_ms": run.duration_ms,
                    "errors": len(run.errors),
                },
                sort_keys=True,
            )
        )
