"""Import mail exported from mail clients: mbox files, Maildir folders, folders of message
files (any name: recognised by content), Outlook .msg files.

Resumable: every message is keyed by its owner and content hash, so a re-run after an
interruption stores nothing twice and counts what was already there as duplicates. Every file
is counted: one that holds no message is skipped with a reason. The last line of output is
always `N processed, R rejected, F failed, D duplicates, S skipped`.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from capture.errors import StoreUnavailable
from capture.importers import IMPORT_BATCH, import_mail, iter_mail_sources
from core.progress import progress_reporter
from crm.models import User


class Command(BaseCommand):
    help = (
        "Import mbox files, Maildir folders, message files and Outlook .msg files for a user; "
        "folders are walked and every file is counted (imported, duplicate, rejected, skipped)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument("--user", metavar="USERNAME", required=True)
        parser.add_argument("--batch-size", type=int, default=IMPORT_BATCH)
        parser.add_argument(
            "--no-progress",
            action="store_true",
            help="No progress output (a bar on a terminal, log lines otherwise).",
        )

    def handle(self, *args, **options) -> None:
        user = User.objects.filter(username=options["user"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active user named {options['user']!r}.")
        try:
            sources = iter_mail_sources(options["paths"])
        except (FileNotFoundError, ValueError) as e:
            raise CommandError(str(e)) from e
        total = sum(s.count for s in sources)
        bar = progress_reporter(
            total=total,
            desc="import",
            unit="msg",
            stream=self.stderr,
            enabled=not options["no_progress"],
        )
        try:
            summary = import_mail(
                sources, user=user, batch_size=max(1, options["batch_size"]), progress=bar.update
            )
        except StoreUnavailable as e:
            raise CommandError(f"The store is unavailable ({e}); run again to resume.") from e
        finally:
            bar.close()
        for code, n in sorted(summary.reasons.items()):
            self.stderr.write(f"  {code}: {n}")
        for reason, n in sorted(summary.skipped_reasons.items()):
            self.stderr.write(f"  skipped {reason}: {n}")
        self.stdout.write(summary.line())
