"""`{% policy_history obj %}`: who changed what from what to what, when (templates/admin/change_form.html)."""

from __future__ import annotations

from django import template
from django.template.loader import render_to_string

from config.portal.policy_history import history_rows

register = template.Library()

MAX_ROWS = 100


@register.simple_tag(takes_context=True)
def policy_history(context, obj) -> str:
    request = context.get("request")
    user = getattr(request, "user", None)
    if obj is None or user is None:
        return ""
    result = history_rows(obj, user, limit=MAX_ROWS)
    if result is None:
        return ""
    return render_to_string(
        "admin/portal/policy_history.html",
        {**result, "max_rows": MAX_ROWS},
        request=request,
    )
