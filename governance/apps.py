from __future__ import annotations

from django.apps import AppConfig

from core.schedules import Schedule


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"
    periodic_tasks = (
        Schedule(
            name="governance.seal_audit",
            task="governance.seal_audit",
            every_seconds=30,
            description="Link pending audit events into the hash chain.",
        ),
        Schedule(
            name="governance.sweep_webhooks",
            task="governance.sweep_webhooks",
            every_seconds=10,
            description="Queue due webhook deliveries (retries, lost queue messages); prune the log.",
        ),
    )

    def ready(self) -> None:
        from core.dispatch import register_local
        from governance.audit import register_event_listener
        from governance.outbound.outbox import write_outbox
        from governance.outbound.tasks import deliver_webhooks, sweep_webhooks
        from governance.tasks import seal_audit

        # Without a broker (embedded mode, tests) the task runs in-process: core/dispatch.py.
        register_local(seal_audit, deliver_webhooks, sweep_webhooks)
        # Outbound webhooks: outbox rows in the transaction of every audited change.
        register_event_listener(write_outbox)
