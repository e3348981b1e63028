"""`manage.py reconcile_mailbox ID [--fetch-missing]`: is every UID on the server accounted for?

Prints one line per folder and a final summary ending in `gap=N`. Exit code 1 when a gap
remains (for monitoring), 2 when the mailbox could not be checked (busy, paused, disabled,
unreachable). See docs/imap.md.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from capture.imap.reconcile import reconcile_mailbox
from capture.models import MailboxConnection

SHOWN_UIDS = 20


class Command(BaseCommand):
    help = "Compare a mailbox's UIDs on the server with what was stored, skipped or rejected."

    def add_arguments(self, parser) -> None:
        parser.add_argument("mailbox", type=int, help="Mailbox id.")
        parser.add_argument(
            "--fetch-missing", action="store_true", help="Fetch the missing UIDs and count again."
        )

    def handle(self, *args, **options) -> None:
        mailbox_id = options["mailbox"]
        if not MailboxConnection.objects.filter(pk=mailbox_id).exists():
            raise CommandError(f"No mailbox with id {mailbox_id}.")
        report = reconcile_mailbox(
            mailbox_id, fetch_missing=options["fetch_missing"], actor="cli", channel="cli"
        )
        for folder in report.folders:
            self.stdout.write(folder.line())
            if folder.gap:
                shown = ", ".join(map(str, folder.gap_uids[:SHOWN_UIDS]))
                more = " …" if folder.gap > SHOWN_UIDS else ""
                self.stdout.write(f"  missing UIDs: {shown}{more}")
        for name, reason in report.excluded:
            self.stdout.write(f"{name}: not synced ({reason})")
        self.stdout.write(report.summary())
        if not report.completed:
            raise CommandError(f"mailbox {mailbox_id} was not reconciled", returncode=2)
        if report.gap:
            if not report.fetch_missing:
                self.stderr.write("Run again with --fetch-missing to fetch the missing UIDs.")
            sys.exit(1)
