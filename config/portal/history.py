"""Policy history (django-simple-history): who changed what from what to what, when.

Each tracked policy model gets a Historical<Model> table in this app (label `portal`), filled
on every save and delete made through the ORM (admin, API, services), with the user from the
request (simple_history's HistoryRequestMiddleware). The change page of each tracked model
shows the history (templates/admin/change_form.html, `policy_history` tag).

Why django-simple-history rather than django-pghistory: pghistory records through PostgreSQL
triggers (django-pgtrigger), whose migration operations do nothing on other databases, so the
SQLite embedded mode (`make run`) would record no history at all (docs/admin.md).

Registration point: add a model's label to POLICY_HISTORY_MODELS (retention policies and legal
holds are listed already; a label whose model does not exist yet is skipped), then run
`manage.py makemigrations portal`.
"""

from __future__ import annotations

from django.apps import apps

POLICY_HISTORY_MODELS: tuple[str, ...] = (
    "governance.OrgSettings",
    "governance.UserSettings",
    "governance.NeverLogRule",
    "capture.LinkRule",
    "capture.Category",
    # retention policies and legal holds (capture/models/retention.py)
    "capture.RetentionPolicy",
    "capture.LegalHold",
)
# Fields never copied into the history (secrets, bulky or derived).
EXCLUDED_FIELDS: dict[str, list[str]] = {}


def tracked_models() -> list[type]:
    """The tracked models that exist in this installation."""
    found = []
    for label in POLICY_HISTORY_MODELS:
        app_label, model_name = label.split(".")
        try:
            found.append(apps.get_model(app_label, model_name, require_ready=False))
        except LookupError:
            continue
    return found


def register_policy_history() -> None:
    """Called once from config/portal/models.py (this app loads after the apps it tracks)."""
    from simple_history import register
    from simple_history.exceptions import MultipleRegistrationsError

    for model in tracked_models():
        try:
            register(
                model,
                app="config.portal",
                excluded_fields=EXCLUDED_FIELDS.get(model._meta.label, []),
                manager_name="policy_history",
            )
        except MultipleRegistrationsError:
            continue


def is_tracked(model: type) -> bool:
    return "policy_history" in getattr(model, "__dict__", {}) or hasattr(model, "policy_history")
