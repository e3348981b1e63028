"""`manage.py verify_audit_chain`: seal pending events, recompute the chain, report the first
broken link. Exit code 0 when intact, 1 when broken."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand

from governance.audit import seal_pending_events, verify_chain


class Command(BaseCommand):
    help = "Verify the audit log's hash chain (sealing pending events first); exit 1 when it is broken."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--no-seal", action="store_true", help="Verify without sealing pending events first."
        )

    def handle(self, *args, **options) -> None:
        sealed = 0 if options["no_seal"] else seal_pending_events()
        report = verify_chain()
        if sealed:
            self.stdout.write(f"Sealed {sealed} pending event(s) first.")
        if report.ok:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Audit chain intact: {report.checked} event(s) verified, {report.unsealed} unsealed."
                )
            )
            return
        self.stderr.write(
            self.style.ERROR(
                f"Audit chain BROKEN at seal_seq {report.first_broken_seq} "
                f"(event id {report.first_broken_id}): {report.reason}. "
                f"{report.checked} event(s) before it verified."
            )
        )
        sys.exit(1)
