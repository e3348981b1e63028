"""`manage.py deliver_webhooks`: send due webhook deliveries here and prune the delivery log
(what the beat task governance.sweep_webhooks and the delivery tasks do)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from governance.outbound.delivery import deliver_due, prune_delivery_log


class Command(BaseCommand):
    help = "Send every due outbound webhook delivery in this process, then prune the log."

    def handle(self, *args, **options) -> None:
        delivered = deliver_due()
        pruned = prune_delivery_log()
        self.stdout.write(f"Delivered {delivered} webhook(s); pruned {pruned} old log row(s).")
