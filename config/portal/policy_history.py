"""The rows of an object's policy history, for its change page.

A tracked model's history comes from its Historical<Model> table (django-simple-history,
config/portal/history.py): each save or delete, who made it, and each changed field's old and
new value. Consent is append-only already (governance.ConsentRecord): its history is the
contact's consent rows themselves, shown in order.
"""

from __future__ import annotations

from typing import Any

from config.portal.history import is_tracked

KIND = {"+": "created", "~": "changed", "-": "deleted"}


def _value(field, value: Any) -> str:
    if value is None or value == "":
        return "—"
    choices = getattr(field, "flatchoices", None)
    if choices:
        return str(dict(choices).get(value, value))
    return str(value)


def history_rows(obj: Any, user: Any, limit: int = 100) -> dict[str, Any] | None:
    """{"title", "rows", "truncated"} for the object's history, or None when it has none to
    show (not tracked, or the user may not view this model)."""
    opts = obj._meta
    if not (
        user.has_perm(f"{opts.app_label}.view_{opts.model_name}")
        or user.has_perm(f"{opts.app_label}.change_{opts.model_name}")
    ):
        return None
    if opts.label == "governance.ConsentRecord":
        return _consent_rows(obj, limit)
    if not is_tracked(type(obj)):
        return None
    records = list(
        obj.policy_history.select_related("history_user").order_by("-history_date", "-history_id")[
            : limit + 1
        ]
    )
    rows = []
    for i, record in enumerate(records[:limit]):
        previous = records[i + 1] if i + 1 < len(records) else None
        changes = []
        if previous is not None and record.history_type == "~":
            delta = record.diff_against(previous)
            for change in delta.changes:
                field = opts.get_field(change.field)
                changes.append(
                    {
                        "field": str(field.verbose_name),
                        "old": _value(field, change.old),
                        "new": _value(field, change.new),
                    }
                )
        rows.append(
            {
                "when": record.history_date,
                "who": record.history_user.get_username() if record.history_user else "system",
                "kind": KIND.get(record.history_type, record.history_type),
                "changes": changes,
                "reason": record.history_change_reason or "",
            }
        )
    return {"title": "Policy history", "rows": rows, "truncated": len(records) > limit}


def _consent_rows(obj: Any, limit: int) -> dict[str, Any]:
    model = type(obj)
    records = list(
        model.objects.filter(contact_id=obj.contact_id).order_by(
            "-effective_at", "-recorded_at", "-id"
        )[: limit + 1]
    )
    rows = []
    for r in records[:limit]:
        rows.append(
            {
                "when": r.recorded_at,
                "who": r.recorded_by_label or "system",
                "kind": f"{r.get_action_display()} (effective {r.effective_at:%Y-%m-%d})",
                "changes": [
                    {"field": "purpose", "old": "", "new": r.get_purpose_display()},
                    {"field": "basis", "old": "", "new": r.get_basis_display()},
                ],
                "reason": r.source,
                "current": r.pk == obj.pk,
            }
        )
    return {
        "title": "Consent history of this contact (append-only)",
        "rows": rows,
        "truncated": len(records) > limit,
    }
