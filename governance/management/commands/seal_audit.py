"""`manage.py seal_audit`: link pending audit events into the hash chain (what the beat task does)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from governance.audit import seal_pending_events


class Command(BaseCommand):
    help = "Seal pending audit events into the hash chain (safe to run while the sealer task runs)."

    def handle(self, *args, **options) -> None:
        sealed = seal_pending_events()
        self.stdout.write(f"Sealed {sealed} audit event(s).")
