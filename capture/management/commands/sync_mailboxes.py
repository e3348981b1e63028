"""`manage.py sync_mailboxes [--mailbox ID ...] [--all]`: run IMAP syncs now, with progress.

Without --mailbox it syncs the mailboxes that are due (what beat queues every minute);
--all syncs every enabled, unpaused mailbox whether due or not. Runs in this process.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from capture.imap.mailboxes import due_mailboxes
from capture.imap.sync import sync_mailbox
from capture.models import MailboxConnection


class Command(BaseCommand):
    help = "Sync IMAP mailboxes now (due ones by default), with a progress bar and a summary."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--mailbox", type=int, action="append", help="Mailbox id (repeatable).")
        parser.add_argument("--all", action="store_true", help="Every enabled, unpaused mailbox.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options) -> None:
        if options["mailbox"]:
            ids = list(options["mailbox"])
            missing = set(ids) - set(
                MailboxConnection.objects.filter(pk__in=ids).values_list("pk", flat=True)
            )
            if missing:
                raise CommandError(f"No mailbox with id {', '.join(map(str, sorted(missing)))}.")
        elif options["all"]:
            qs = MailboxConnection.objects.filter(enabled=True, paused_reason="").order_by("pk")
            ids = list(qs.values_list("pk", flat=True))
        else:
            ids = list(due_mailboxes().values_list("pk", flat=True))
        if not ids:
            self.stdout.write("No mailbox to sync.")
            return
        show = not options["no_progress"]
        failed = 0
        for mailbox_id in ids:
            bar = tqdm(total=0, unit="msg", disable=not show, file=sys.stderr, leave=False)

            def progress(
                folder: str, done: int, total: int, bar=bar, mailbox_id=mailbox_id
            ) -> None:
                bar.set_description(f"mailbox {mailbox_id} {folder}")
                if bar.total != total:
                    bar.reset(total=total)
                bar.n = done
                bar.refresh()

            try:
                report = sync_mailbox(mailbox_id, progress=progress)
            finally:
                bar.close()
            if report.status not in ("ok", "busy"):
                failed += 1
            self.stdout.write(report.summary())
        if failed:
            self.stderr.write(f"{failed} of {len(ids)} mailbox(es) did not sync cleanly.")
