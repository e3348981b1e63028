"""`manage.py sync_mailboxes [--mailbox ID ...] [--all]`: run IMAP syncs now, with progress.

Without --mailbox it syncs the mailboxes that are due (what beat queues every minute);
--all syncs every enabled, unpaused mailbox whether due or not. Runs in this process.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from capture.imap.mailboxes import due_mailboxes
from capture.imap.sync import sync_mailbox
from capture.models import MailboxConnection
from core.progress import progress_reporter


class Command(BaseCommand):
    help = "Sync IMAP mailboxes now (due ones by default), with a progress bar and a summary."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--mailbox", type=int, action="append", help="Mailbox id (repeatable).")
        parser.add_argument("--all", action="store_true", help="Every enabled, unpaused mailbox.")
        parser.add_argument(
            "--no-progress",
            action="store_true",
            help="No progress output (a bar on a terminal, log lines otherwise).",
        )

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
            bar = progress_reporter(
                total=0,
                desc=f"mailbox {mailbox_id}",
                unit="msg",
                stream=self.stderr,
                enabled=show,
                leave=False,
            )

            def progress(
                folder: str, done: int, total: int, bar=bar, mailbox_id=mailbox_id
            ) -> None:
                bar.set_description(f"mailbox {mailbox_id} {folder}")
                if bar.total != total:
                    bar.reset(total=total)
                bar.update(done - bar.n)

            try:
                report = sync_mailbox(mailbox_id, progress=progress)
            finally:
                bar.close()
            if report.status not in ("ok", "busy"):
                failed += 1
            self.stdout.write(report.summary())
        if failed:
            self.stderr.write(f"{failed} of {len(ids)} mailbox(es) did not sync cleanly.")
