"""The outbound event types, which audit actions they come from, and their payloads.

Every change already records an audit event in its transaction (governance/audit.py), so the
webhooks follow the audit log instead of hooks in every app: a type is a rule over audit
actions. Payloads are thin: ids, kinds and reason codes, what the audit event itself holds
(no addresses, subjects or bodies: docs/architecture.md "Audit chain design"). A receiver
reads the record through the API with its own token, so it sees only what it may see, and an
erased person does not live on in a delivery log.

Body (Standard Webhooks): `{"type": ..., "timestamp": <the change's time, RFC 3339>, "data": {...}}`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from governance.models import AuditEvent


@dataclass(frozen=True)
class EventType:
    name: str
    description: str


EVENT_TYPES: tuple[EventType, ...] = (
    EventType("message.logged", "A message was captured and stored for the first time."),
    EventType("message.categorised", "Categories were added to or changed on a message."),
    EventType("message.purged", "Stored messages were deleted (a never-log rule's removal)."),
    EventType("thread.linked", "A thread was linked to a contact, organization or item by hand."),
    EventType("thread.unlinked", "A thread's link to a record was removed."),
    EventType("contact.created", "A contact was created (API, admin, import or captured mail)."),
    EventType("contact.updated", "A contact was changed."),
    EventType("contact.deleted", "A contact was deleted."),
    EventType("organization.created", "An organization was created."),
    EventType("organization.updated", "An organization was changed."),
    EventType("organization.deleted", "An organization was deleted."),
    EventType("item.created", "A deal, lead, project or ticket was created."),
    EventType("item.updated", "A deal, lead, project or ticket was changed."),
    EventType("item.deleted", "A deal, lead, project or ticket was deleted."),
    EventType("consent.changed", "A legal basis or tracking consent was recorded for a contact."),
    EventType("dsr.completed", "A data-subject request was completed."),
)
EVENT_TYPE_NAMES: frozenset[str] = frozenset(t.name for t in EVENT_TYPES)


def _fields(*names: str) -> Callable[[AuditEvent], dict[str, Any]]:
    """Data: the object's id and these keys of the audit detail (which holds no personal data)."""

    def build(event: AuditEvent) -> dict[str, Any]:
        data: dict[str, Any] = {"id": _as_id(event.object_id)}
        data.update({n: event.detail[n] for n in names if n in event.detail})
        return data

    return build


def _message_logged(event: AuditEvent) -> dict[str, Any]:
    d = event.detail
    return {
        "id": _as_id(event.object_id),
        "raw_message": d.get("raw"),
        "channel": event.channel,
        "stored": d.get("stored"),
        "user": event.actor_user_id,
    }


def _thread_link(event: AuditEvent) -> dict[str, Any]:
    d = event.detail
    data = {"thread": _as_id(event.object_id), "target": d.get("target")}
    data["target_id"] = d.get("target_id")
    for key in ("source", "removed"):
        if key in d:
            data[key] = d[key]
    return data


def _consent(event: AuditEvent) -> dict[str, Any]:
    d = event.detail
    return {
        "id": _as_id(event.object_id),
        "contact": d.get("contact_id"),
        "purpose": d.get("purpose"),
        "basis": d.get("basis"),
        "action": d.get("action"),
    }


def _purged(event: AuditEvent) -> dict[str, Any]:
    d = event.detail
    counts = {
        k: d[k] for k in ("messages", "threads", "attachments", "captures", "count") if k in d
    }
    return {"reason": event.action, **counts}


@dataclass(frozen=True)
class Source:
    """Audit action -> event type, with a condition on the event and the payload's data."""

    event_type: str
    data: Callable[[AuditEvent], dict[str, Any]]
    when: Callable[[AuditEvent], bool] | None = None


def _crm(kind: str) -> dict[str, Source]:
    return {
        f"crm.{kind}.{verb}": Source(f"{kind}.{verb}", _fields("fields", "source", "via"))
        for verb in ("created", "updated", "deleted")
    }


SOURCES: dict[str, Source] = {
    # One per captured message (capture/pipeline.py); a second capture of a stored message
    # (another user, the add-in saving again) is no new message.
    "email.captured": Source(
        "message.logged", _message_logged, lambda e: not e.detail.get("duplicate")
    ),
    "email.categorised": Source("message.categorised", _fields("added")),
    "email.categories_changed": Source("message.categorised", _fields("added", "removed")),
    "thread.linked": Source("thread.linked", _thread_link),
    "thread.unlinked": Source("thread.unlinked", _thread_link),
    **_crm("contact"),
    **_crm("organization"),
    **_crm("item"),
    "consent.recorded": Source("consent.changed", _consent),
    "never_log.removed": Source("message.purged", _purged),
    # retention (capture/purge.py): deleted into the bin by an admin, and removed for good
    "retention.delete": Source("message.purged", _purged),
    "retention.vacuumed": Source("message.purged", _fields("count")),
    # The data-subject request work records this action when a request is done.
    "dsr.completed": Source("dsr.completed", _fields("kind", "counts")),
}
assert {s.event_type for s in SOURCES.values()} <= EVENT_TYPE_NAMES


def event_type_of(event: AuditEvent) -> Source | None:
    """The webhook source of an audit event, or None (most actions have none)."""
    source = SOURCES.get(event.action)
    if source is None or (source.when is not None and not source.when(event)):
        return None
    return source


def message_id_of(event: AuditEvent) -> str:
    """The webhook-id: stable per event, the same for every attempt, subscription and replay,
    so a receiver can drop what it has already processed."""
    return f"evt_{event.pk}"


def render_body(event: AuditEvent, source: Source) -> str:
    """The JSON body for an event (compact; the bytes are what is signed)."""
    created = event.created.astimezone(UTC)
    payload = {
        "type": source.event_type,
        "timestamp": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": source.data(event),
    }
    return json.dumps(payload, separators=(",", ":"), sort_keys=False, default=str)


def _as_id(value: str) -> int | str | None:
    if not value:
        return None
    return int(value) if value.isdigit() else value
