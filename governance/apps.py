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
    )

    def ready(self) -> None:
        from core.dispatch import register_local
        from governance.tasks import seal_audit

        # Without a broker (embedded mode, tests) the task runs in-process: core/dispatch.py.
        register_local(seal_audit)
