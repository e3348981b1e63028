from __future__ import annotations

from django.apps import AppConfig

from core.schedules import Schedule


class PortalConfig(AppConfig):
    """The admin portal's own tables: the dashboard summary and the policy history."""

    name = "config.portal"
    label = "portal"
    verbose_name = "Admin portal"
    default_auto_field = "django.db.models.BigAutoField"

    @property
    def periodic_tasks(self) -> tuple[Schedule, ...]:
        from django.conf import settings

        return (
            Schedule(
                name="portal.refresh_dashboard",
                task="portal.refresh_dashboard",
                every_seconds=settings.MAILWARDEN_DASHBOARD_REFRESH_SECONDS,
                description="Recompute the admin dashboard's figures (one summary row).",
            ),
        )

    def ready(self) -> None:
        from config.portal import audit_panels, tasks
        from core.dispatch import register_local

        register_local(tasks.refresh_dashboard)
        audit_panels.register()

        from config.i18n import translate_model_names

        translate_model_names()  # the admin's app and model names in the user's language

        from axes.signals import user_locked_out

        user_locked_out.connect(_audit_lockout, dispatch_uid="portal.audit_lockout")


def _audit_lockout(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    """A login lockout (django-axes) goes in the audit log: who was locked out, from where."""
    from governance.audit import record_event

    record_event(
        "auth.locked_out",
        actor="django-axes",
        channel="admin",
        address=(ip_address or "")[:64],
        object_type="crm.user",
        detail={"username": (username or "")[:150]},
    )
