"""`manage.py recompute_expiry`: recompute every message's expires_at and its why
(docs/retention.md), with a progress bar on a terminal and log lines otherwise."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from capture.models import ExpiryJob, Thread
from capture.retention import recompute


class Command(BaseCommand):
    help = "Recompute expires_at (and the policy and rule that set it) for all stored mail."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--thread", type=int, action="append", help="Only these threads.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options) -> None:
        scope = {"threads": options["thread"]} if options["thread"] else {}
        total = len(options["thread"]) if options["thread"] else Thread.objects.count()
        tty = sys.stderr.isatty() and not options["no_progress"]
        bar = tqdm(total=total, unit="thread", file=sys.stderr, disable=not tty)
        seen = [0]

        def progress(n: int) -> None:
            bar.update(n)
            seen[0] += n
            if not tty:
                self.stdout.write(f"{seen[0]}/{total} threads")

        job = ExpiryJob.objects.create(reason="manage.py recompute_expiry", scope=scope)
        try:
            result = recompute(scope, job=job, progress=progress)
        finally:
            bar.close()
        self.stdout.write(f"{result['messages']} messages, {result['changed']} changed")
