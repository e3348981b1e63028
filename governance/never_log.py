"""Never-log rules: adding and removing them (org-wide or personal), and offering to remove
what is already stored from a newly blocked address or domain.

Deleting captured mail is capture's business, and governance must not import capture
(docs/architecture.md, "Layers"): capture registers the preview with
`register_removal_preview(fn)` on start-up, and the removal itself is the Celery task
REMOVE_NEVER_LOGGED, queued by name through core.dispatch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils.translation import gettext

from core import dispatch
from crm.addresses import InvalidAddress, normalize_address, registrable_domain
from crm.models import User
from governance.audit import record_event
from governance.models import NeverLogRule

# The task (capture/tasks.py) that deletes stored mail a rule matches.
REMOVE_NEVER_LOGGED = "capture.remove_never_logged"

# fn(rule) -> {"messages": n, "threads": n, "attachments": n}
RemovalPreview = Callable[[NeverLogRule], dict[str, int]]
_previews: list[RemovalPreview] = []


class NeverLogRejected(Exception):
    """A never-log rule cannot be added; `field` names the bad input."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def register_removal_preview(fn: RemovalPreview) -> RemovalPreview:
    """Let `fn(rule)` count the stored mail a rule matches (capture registers it; idempotent)."""
    if fn not in _previews:
        _previews.append(fn)
    return fn


def normalize_rule_value(kind: str, value: str) -> str:
    """Addresses are stored normalised, domains as registrable domains (free-mail ones allowed)."""
    text = (value or "").strip()
    try:
        if kind == NeverLogRule.Kind.ADDRESS:
            return normalize_address(text)
        host = normalize_address(f"postmaster@{text.lstrip('@')}").partition("@")[2]
    except InvalidAddress as e:
        what = "an e-mail address" if kind == NeverLogRule.Kind.ADDRESS else "a domain"
        raise NeverLogRejected(
            "value", gettext("Enter %(what)s (%(e)s).") % {"what": what, "e": e}
        ) from e
    return registrable_domain(host)


def visible_never_log_rules(user: User) -> QuerySet[NeverLogRule]:
    """Org-wide rules and the user's own; an admin sees every personal rule too."""
    qs = NeverLogRule.objects.select_related("user")
    if getattr(user, "is_admin_role", False):
        return qs
    return qs.filter(Q(user__isnull=True) | Q(user=user))


def add_never_log_rule(
    kind: str,
    value: str,
    *,
    user: User | None = None,
    note: str = "",
    actor: Any = None,
    channel: str = "",
    client: str = "",
) -> NeverLogRule:
    """Add an org-wide (user None) or personal never-log rule, audited."""
    if kind not in NeverLogRule.Kind.values:
        raise NeverLogRejected(
            "kind",
            gettext("Kind must be one of %(values)s.") % {"values": NeverLogRule.Kind.values},
        )
    normalized = normalize_rule_value(kind, value)
    with transaction.atomic():
        if NeverLogRule.objects.filter(kind=kind, value=normalized, user=user).exists():
            raise NeverLogRejected("value", gettext("This rule already exists."))
        rule = NeverLogRule.objects.create(kind=kind, value=normalized, user=user, note=note)
        record_event(
            "governance.neverlogrule.created",
            actor=actor,
            obj=rule,
            channel=channel,
            address=client,
            detail={"kind": kind, "personal": user is not None, "user": user.pk if user else None},
        )
    return rule


def delete_never_log_rule(
    rule: NeverLogRule, *, actor: Any = None, channel: str = "", client: str = ""
) -> None:
    """Delete a never-log rule (stored mail stays as it is), audited."""
    with transaction.atomic():
        record_event(
            "governance.neverlogrule.deleted",
            actor=actor,
            obj=rule,
            channel=channel,
            address=client,
            detail={"kind": rule.kind, "personal": rule.user_id is not None},
        )
        rule.delete()


def preview_never_log_removal(
    rule: NeverLogRule, *, actor: Any = None, channel: str = "", client: str = ""
) -> dict[str, int]:
    """Count the stored mail the rule matches (what `queue_never_log_removal` would delete)."""
    counts = {"messages": 0, "threads": 0, "attachments": 0}
    for fn in _previews:
        for key, n in fn(rule).items():
            counts[key] = counts.get(key, 0) + n
    record_event(
        "never_log.removal_previewed",
        actor=actor,
        obj=rule,
        channel=channel,
        address=client,
        detail={"rule": rule.pk, "personal": rule.user_id is not None, **counts},
    )
    return counts


def queue_never_log_removal(
    rule: NeverLogRule, *, actor: Any = None, channel: str = "", client: str = ""
) -> None:
    """Queue the deletion of the stored mail the rule matches (after commit), audited."""
    with transaction.atomic():
        record_event(
            "never_log.removal_queued",
            actor=actor,
            obj=rule,
            channel=channel,
            address=client,
            detail={"rule": rule.pk, "personal": rule.user_id is not None},
        )
        transaction.on_commit(dispatch.on_commit_send(REMOVE_NEVER_LOGGED, rule.pk))
