"""Capture one message read from stdin: the command an MTA's pipe transport runs.

Exit codes follow sysexits(3), which Postfix, Exim and Sendmail understand:
0 stored (processed, or already captured), 65 rejected (reason code on stderr, the MTA
bounces), 67 unknown user or recipient, 75 temporary failure (the MTA keeps the message and
retries).
"""

from __future__ import annotations

import os
import sys

from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError

from capture.errors import InputRejected, StoreUnavailable
from capture.importers import UnknownRecipient, capture_piped_message, resolve_pipe_owner

EX_OK = os.EX_OK  # 0
EX_DATAERR = os.EX_DATAERR  # 65
EX_NOUSER = os.EX_NOUSER  # 67
EX_TEMPFAIL = os.EX_TEMPFAIL  # 75


class Command(BaseCommand):
    help = "Capture one RFC 822 message from stdin for a user or capture address (MTA pipe)."
    requires_system_checks: list[str] = []  # the MTA runs this once per message: start fast

    def add_arguments(self, parser: CommandParser) -> None:
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--user", metavar="USERNAME", help="Capture for this user.")
        who.add_argument(
            "--recipient",
            metavar="ADDRESS",
            help="The envelope recipient: a capture address (log+token@domain) or a user's own "
            "address.",
        )
        parser.add_argument(
            "--sender", metavar="ADDRESS", default="", help="The envelope sender (MAIL FROM)."
        )

    def handle(self, *args, **options) -> None:
        data = sys.stdin.buffer.read()
        recipient = options["recipient"] or ""
        try:
            user, address = resolve_pipe_owner(username=options["user"] or "", recipient=recipient)
            result = capture_piped_message(
                data,
                user=user,
                capture_address=address,
                envelope_from=options["sender"],
                envelope_to=[recipient] if recipient else [],
            )
        except UnknownRecipient as e:
            self._exit(EX_NOUSER, f"5.1.1 {e.code}: {e.detail}")
        except InputRejected as e:
            self._exit(EX_DATAERR, f"5.7.1 rejected: {e.code}")
        except (StoreUnavailable, DatabaseError) as e:
            self._exit(EX_TEMPFAIL, f"4.3.0 try again later: {e.__class__.__name__}")
        if result.status == "rejected":
            self._exit(EX_DATAERR, f"5.7.1 rejected: {result.reason_code}")
        if result.status == "failed":
            # Stored: the sweeper retries processing, so the MTA must not send it again.
            self.stderr.write(f"stored as raw #{result.raw_id}; processing will be retried")
        note = " (already captured)" if result.duplicate else ""
        self.stdout.write(f"stored raw #{result.raw_id}: {result.status}{note}")

    def _exit(self, code: int, message: str) -> None:
        self.stderr.write(message)
        sys.exit(code)
