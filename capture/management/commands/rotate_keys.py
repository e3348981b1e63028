"""`manage.py rotate_keys`: put every data key and mailbox secret under the newest master key.

Prepend a new key to MAILWARDEN_MASTER_KEYS, restart, run this; once it reports nothing left
under an older key, the older key can be removed. Files are not rewritten, and neither are
message bodies encrypted in the database (MAILWARDEN_ENCRYPT_BODIES): their one body key is a
DataKey row (`body-key`, capture/bodycrypt.py) re-wrapped with the file keys. Resumable: run
it again after an interruption. A progress bar on a terminal, log lines otherwise.
"""

from __future__ import annotations

import logging
import sys

from django.core.management.base import BaseCommand
from tqdm import tqdm

from capture import bodycrypt
from capture.keyrotation import pending, rotate_keys
from capture.models import DataKey
from governance import crypto

log = logging.getLogger("mailwarden.rotate_keys")


class Command(BaseCommand):
    help = "Re-wrap data keys and re-encrypt mailbox secrets under the newest master key."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--chunk", type=int, default=5000, help="Data keys per transaction.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options) -> None:
        keys, secrets = pending()
        total = keys + secrets
        newest = crypto.keyring().newest.key_id
        self.stdout.write(
            f"newest master key {newest}: {keys} data key(s) and {secrets} secret(s) to rotate"
        )
        tty = sys.stderr.isatty() and not options["no_progress"]
        bar = tqdm(total=total, unit="key", disable=not tty, file=sys.stderr)
        seen = [0, 0]

        def progress(n: int) -> None:
            bar.update(n)
            seen[0] += n
            if not tty and (seen[0] - seen[1] >= 10_000 or seen[0] >= total):
                seen[1] = seen[0]
                log.info("rotate_keys: %d of %d done", seen[0], total)
                self.stdout.write(f"rotate_keys: {seen[0]} of {total} done")

        try:
            report = rotate_keys(chunk=max(1, options["chunk"]), progress=progress)
        finally:
            bar.close()
        self.stdout.write(report.summary())
        body_key = DataKey.objects.filter(name=bodycrypt.BODY_KEY).values_list("key_id", flat=True)
        if body_key:
            state = "under the newest master key" if body_key[0] == newest else "NOT rotated"
            self.stdout.write(
                f"message bodies in the database: body key {state} (no body was rewritten)"
            )
        if report.unavailable:
            self.stderr.write(
                f"{report.unavailable} item(s) need a master key that is not configured."
            )
