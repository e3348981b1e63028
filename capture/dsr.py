"""Data-subject requests: access (Art. 15), erasure (Art. 17), objection (Art. 21).

One request = one address. The views, admin actions, task and `manage.py data_subject_request`
are doors over `create_request` and `run_request`; see docs/governance.md
"Data-subject requests" for what each kind does, and what it does not reach.

- access: an AES-encrypted zip (pyzipper) with `subject.json` (every contact, participant row,
  message, consent, link, tracking event and audit event about the address) and the `.eml`
  files; the password is shown once when the request is made; the requester downloads it once
  before it expires.
- erasure: messages where the address is the only external participant are deleted; in the
  others the participant becomes a stable pseudonym, the address (and the display names it
  came with) redacted from headers, subject and bodies, the original `.eml` deleted and
  attachments carrying the address dropped; the contact, its addresses and its consent history
  go; what a legal hold keeps is reported with the hold's reason; a keyed hash of the address
  is kept (ErasedAddress + the tombstone audit event) so a later capture of it is refused.
- objection: an org-wide never-log entry with the request as its source, and the contact's
  consent recorded as withdrawn (which the retention trigger "consent withdrawn" acts on).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyzipper
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from capture import dispatch, holds
from capture.models import (
    Attachment,
    Blob,
    DataSubjectRequest,
    EmailMessage,
    ErasedAddress,
    Meeting,
    Participant,
    RawMessage,
    Thread,
    ThreadLink,
    TrackedContact,
    TrackedMessage,
    TrackingEvent,
)
from capture.removal import delete_messages, unlink_files
from capture.storage import open_blob, read_raw
from core.dispatch import send
from crm.addresses import normalize_address
from crm.models import Contact, ContactEmail
from governance.audit import record_event
from governance.crypto import decrypt_secret, encrypt_secret
from governance.models import AuditEvent, ConsentRecord, NeverLogRule
from governance.pseudonyms import keyed_hash, pseudonym_address, pseudonym_name

log = logging.getLogger(__name__)

Kind = DataSubjectRequest.Kind
State = DataSubjectRequest.State


class DsrRejected(Exception):
    """Bad input for a request; `errors` maps field names to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))


class ArchiveUnavailable(Exception):
    """The access archive is not ready, was downloaded already, or expired."""


def archive_ttl() -> timedelta:
    return timedelta(days=getattr(settings, "MAILWARDEN_DSR_ARCHIVE_DAYS", 7))


def archive_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "dsr"


# --- legal holds ----------------------------------------------------------------------------


def held_messages(message_ids: Iterable[int]) -> dict[int, list[dict[str, str]]]:
    """Message id -> the active holds covering it ({"hold", "reason"}). The retention work
    (capture/holds.py) answers this; erasure never touches a held message and reports it."""
    return holds.held_with_reasons(list(message_ids))


# --- create / run ---------------------------------------------------------------------------


def create_request(
    kind: str,
    address: str,
    *,
    requested_by: Any = None,
    actor: Any = None,
    note: str = "",
    channel: str = "",
    client: str = "",
) -> tuple[DataSubjectRequest, str]:
    """Record a request and queue it. Returns (request, password); the password (access only)
    is shown to the requester this once and kept encrypted only until the archive is built."""
    errors: dict[str, list[str]] = {}
    if kind not in Kind.values:
        errors["kind"] = [f"Must be one of: {', '.join(Kind.values)}."]
    try:
        normalised = normalize_address(address or "")
        if "@" not in normalised:
            raise ValueError
    except (ValueError, TypeError):
        errors["address"] = [gettext("Enter a valid email address.")]
        normalised = ""
    if len(note or "") > 500:
        errors["note"] = [gettext("At most 500 characters.")]
    if errors:
        raise DsrRejected(errors)
    password = secrets.token_urlsafe(18) if kind == Kind.ACCESS else ""
    with transaction.atomic():
        req = DataSubjectRequest.objects.create(
            kind=kind,
            address=normalised,
            address_hash=keyed_hash(normalised),
            requested_by=requested_by if getattr(requested_by, "pk", None) else None,
            note=note or "",
            password_enc=encrypt_secret(password) if password else "",
        )
        record_event(
            "dsr.created",
            actor=actor or requested_by,
            obj=req,
            channel=channel,
            address=client,
            detail={"kind": kind},
        )
        transaction.on_commit(lambda: send(dispatch.RUN_DATA_SUBJECT_REQUEST, req.pk))
    return req, password


def run_request(
    request_id: int, progress: Callable[[int], None] | None = None
) -> DataSubjectRequest:
    """Carry a request out (idempotent: a completed request is returned as it is)."""
    with transaction.atomic():
        req = DataSubjectRequest.objects.select_for_update().filter(pk=request_id).first()
        if req is None:
            raise DataSubjectRequest.DoesNotExist(request_id)
        if req.state == State.COMPLETED:
            return req
        req.state, req.error = State.RUNNING, ""
        req.save(update_fields=["state", "error", "updated"])
    runner = {Kind.ACCESS: _run_access, Kind.ERASURE: _run_erasure, Kind.OBJECTION: _run_objection}

    def report(pct: int) -> None:
        DataSubjectRequest.objects.filter(pk=req.pk).update(progress=min(100, max(0, pct)))
        if progress:
            progress(pct)

    try:
        runner[req.kind](req, report)
    except Exception as e:  # recorded on the request for the admin; never the address
        log.exception("data-subject request %s failed", req.pk)
        DataSubjectRequest.objects.filter(pk=req.pk).update(
            state=State.FAILED, error=f"{type(e).__name__}: {e}"[:2000].replace(req.address, "…")
        )
        record_event("dsr.failed", actor="worker", obj=req, detail={"kind": req.kind})
        raise
    req.refresh_from_db()
    return req


def _complete(req: DataSubjectRequest, counts: dict[str, int], **fields: Any) -> None:
    req.state, req.progress, req.completed_at = State.COMPLETED, 100, timezone.now()
    req.counts = counts
    for name, value in fields.items():
        setattr(req, name, value)
    req.save()
    record_event(
        "dsr.completed",
        actor="worker",
        obj=req,
        detail={
            "kind": req.kind,
            "counts": counts,
            "retained": len(req.retained),
            "address_hash": req.address_hash,
        },
    )


# --- what is about the address --------------------------------------------------------------


def _message_ids(address: str) -> list[int]:
    return sorted(
        set(Participant.objects.filter(address=address).values_list("email_id", flat=True))
    )


def _contact_ids(address: str) -> list[int]:
    return sorted(
        set(ContactEmail.objects.filter(address=address).values_list("contact_id", flat=True))
    )


def _row(obj: Any, fields: Iterable[str]) -> dict[str, Any]:
    out = {}
    for name in fields:
        value = getattr(obj, name)
        out[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


def collect_subject_data(address: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Everything stored about `address`: (JSON-ready data, [(zip name, raw storage path)])."""
    message_ids = _message_ids(address)
    contact_ids = _contact_ids(address)
    contacts = []
    for c in Contact.objects.filter(pk__in=contact_ids).prefetch_related("emails"):
        row = _row(c, ["id", "first_name", "last_name", "source", "marketing", "created"])
        row["organization"] = c.organization_id
        row["emails"] = [e.address for e in c.emails.all()]
        contacts.append(row)
    participants = [
        _row(p, ["id", "email_id", "role", "address", "name", "match", "contact_id"])
        for p in Participant.objects.filter(address=address).order_by("email_id", "pk")
    ]
    messages = []
    emls: list[tuple[str, str]] = []
    qs = EmailMessage.objects.filter(pk__in=message_ids).order_by("date", "pk")
    for m in qs.prefetch_related("attachments"):
        row = _row(
            m,
            [
                "id",
                "message_id",
                "thread_id",
                "subject",
                "date",
                "direction",
                "from_address",
                "from_name",
                "stored",
                "text_body",
                "html_body",
                "categories",
                "expires_at",
            ],
        )
        row["attachments"] = [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in m.attachments.all()
        ]
        messages.append(row)
    for email_id, path in RawMessage.objects.filter(email_id__in=message_ids).values_list(
        "email_id", "storage_path"
    ):
        if path:
            emls.append((f"mail/{email_id}-{len(emls) + 1}.eml", path))
    consents = [
        _row(r, ["id", "contact_id", "purpose", "basis", "action", "effective_at", "recorded_at"])
        | {"source": r.source, "evidence_text": r.evidence_text, "channel": r.channel}
        for r in ConsentRecord.objects.filter(contact_id__in=contact_ids).order_by("pk")
    ]
    thread_ids = set(qs.values_list("thread_id", flat=True))
    links = [
        _row(
            link,
            ["id", "thread_id", "contact_id", "organization_id", "item_id", "source", "created"],
        )
        for link in ThreadLink.objects.filter(thread_id__in=thread_ids).order_by("pk")
    ]
    tracking = []
    message_ids_str = list(qs.values_list("message_id", flat=True))
    tracked = TrackedMessage.objects.filter(
        Q(message_id__in=message_ids_str)
        | Q(pk__in=TrackedContact.objects.filter(contact_id__in=contact_ids).values("tracked_id"))
    )
    for event in TrackingEvent.objects.filter(tracked__in=tracked).select_related("tracked"):
        tracking.append(
            _row(event, ["id", "kind", "link", "occurred_at", "machine", "machine_reason"])
            | {"message_id": event.tracked.message_id, "subject": event.tracked.subject}
        )
    refs = (
        [("crm.contact", str(i)) for i in contact_ids]
        + [("capture.emailmessage", str(i)) for i in message_ids]
        + [("governance.consentrecord", str(c["id"])) for c in consents]
    )
    audit = []
    for otype in {t for t, _ in refs}:
        ids = [i for t, i in refs if t == otype]
        for e in AuditEvent.objects.filter(object_type=otype, object_id__in=ids).order_by("pk"):
            audit.append(
                _row(e, ["id", "created", "actor_label", "action", "object_type", "object_id"])
                | {"channel": e.channel, "detail": e.detail}
            )
    data = {
        "address": address,
        "generated_at": timezone.now().isoformat(),
        "contacts": contacts,
        "participants": participants,
        "messages": messages,
        "consents": consents,
        "links": links,
        "tracking_events": tracking,
        "audit_events": audit,
    }
    return data, emls


# --- access ---------------------------------------------------------------------------------


def _run_access(req: DataSubjectRequest, report: Callable[[int], None]) -> None:
    data, emls = collect_subject_data(req.address)
    report(30)
    password = decrypt_secret(req.password_enc)
    root = archive_root()
    root.mkdir(parents=True, exist_ok=True)
    name = f"{req.pk}-{secrets.token_hex(8)}.zip"
    tmp = root / f".{name}.tmp"
    with pyzipper.AESZipFile(
        tmp, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES
    ) as zf:
        zf.setpassword(password.encode())
        zf.writestr("subject.json", json.dumps(data, indent=2, default=str))
        for i, (zip_name, path) in enumerate(emls, 1):
            try:
                zf.writestr(zip_name, read_raw(path))
            except FileNotFoundError:
                continue
            if i % 50 == 0:
                report(30 + int(60 * i / len(emls)))
    tmp.rename(root / name)
    counts = {
        "contacts": len(data["contacts"]),
        "messages": len(data["messages"]),
        "participants": len(data["participants"]),
        "consents": len(data["consents"]),
        "links": len(data["links"]),
        "tracking_events": len(data["tracking_events"]),
        "audit_events": len(data["audit_events"]),
        "eml_files": len(emls),
    }
    with transaction.atomic():
        _complete(
            req,
            counts,
            archive_path=name,
            archive_size=(root / name).stat().st_size,
            archive_expires_at=timezone.now() + archive_ttl(),
            password_enc="",
        )


def take_archive(
    req: DataSubjectRequest, user: Any, *, channel: str = "", client: str = ""
) -> bytes:
    """The archive's bytes, once, for the user who made the request, before it expires; the
    file is deleted as it is handed over. Raises ArchiveUnavailable (or PermissionError)."""
    with transaction.atomic():
        req = DataSubjectRequest.objects.select_for_update().get(pk=req.pk)
        if req.requested_by_id is None or req.requested_by_id != getattr(user, "pk", None):
            raise PermissionError(
                gettext("Only the user who made the request may download its archive.")
            )
        if req.kind != Kind.ACCESS or req.state != State.COMPLETED or not req.archive_path:
            if req.archive_downloaded_at:
                raise ArchiveUnavailable("The archive was downloaded already.")
            raise ArchiveUnavailable("The archive is not ready.")
        if req.archive_expires_at and req.archive_expires_at < timezone.now():
            raise ArchiveUnavailable("The archive has expired.")
        path = archive_root() / req.archive_path
        data = path.read_bytes()
        req.archive_path, req.archive_downloaded_at = "", timezone.now()
        req.save(update_fields=["archive_path", "archive_downloaded_at", "updated"])
        record_event(
            "dsr.archive.downloaded",
            actor=user,
            obj=req,
            channel=channel,
            address=client,
            detail={"size": len(data)},
        )
        transaction.on_commit(lambda: path.unlink(missing_ok=True))
    return data


def expire_archives() -> int:
    """Delete access archives past their expiry (beat, hourly); the number removed."""
    now = timezone.now()
    n = 0
    for req in DataSubjectRequest.objects.filter(archive_expires_at__lt=now).exclude(
        archive_path=""
    ):
        (archive_root() / req.archive_path).unlink(missing_ok=True)
        DataSubjectRequest.objects.filter(pk=req.pk).update(archive_path="")
        record_event("dsr.archive.expired", actor="worker", obj=req)
        n += 1
    return n


# --- erasure --------------------------------------------------------------------------------


def _replacer(
    needles: Iterable[str], replacement_for: Callable[[str], str]
) -> Callable[[str], str]:
    words = sorted({n for n in needles if n}, key=len, reverse=True)
    if not words:
        return lambda text: text
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    return lambda text: pattern.sub(lambda m: replacement_for(m.group(0)), text) if text else text


def _scrub_json(value: Any, scrub: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        return [_scrub_json(v, scrub) for v in value]
    if isinstance(value, dict):
        return {k: _scrub_json(v, scrub) for k, v in value.items()}
    return value


def _external_only(message_ids: list[int], address: str) -> tuple[list[int], list[int]]:
    """Split into (address is the only external participant, other messages)."""
    externals: dict[int, set[str]] = {i: set() for i in message_ids}
    rows = Participant.objects.filter(email_id__in=message_ids).exclude(
        match=Participant.Match.INTERNAL
    )
    for email_id, addr in rows.values_list("email_id", "address"):
        externals[email_id].add(addr)
    only = [i for i, ext in externals.items() if ext <= {address}]
    return only, [i for i in message_ids if i not in set(only)]


def _blob_mentions(blob: Blob, needle: bytes) -> bool:
    try:
        with open_blob(blob.storage_path) as f:
            data = f.read()
    except FileNotFoundError:
        return False
    return needle in data.lower()


def _anonymise_messages(
    message_ids: list[int], address: str
) -> tuple[dict[str, int], list[str], list[str]]:
    """Replace the participant by its pseudonym in the kept messages; returns counts and the
    raw and blob files to delete once the transaction commits."""
    alias, alias_name = pseudonym_address(address), pseudonym_name(address)
    names = set(
        Participant.objects.filter(email_id__in=message_ids, address=address)
        .exclude(name="")
        .values_list("name", flat=True)
    )
    names |= set(
        EmailMessage.objects.filter(pk__in=message_ids, from_address=address)
        .exclude(from_name="")
        .values_list("from_name", flat=True)
    )
    names = {n for n in names if len(n.strip()) >= 3}

    def replacement(found: str) -> str:
        return alias if "@" in found else alias_name

    scrub = _replacer([address, *names], replacement)
    counts = {"anonymised_messages": 0, "dropped_attachments": 0, "deleted_eml": 0}
    Participant.objects.filter(email_id__in=message_ids, address=address).update(
        address=alias, name=alias_name, contact=None, match=Participant.Match.UNMATCHED
    )
    thread_ids = set()
    for m in EmailMessage.objects.filter(pk__in=message_ids):
        thread_ids.add(m.thread_id)
        if m.from_address == address:
            m.from_address, m.from_name = alias, alias_name
        m.subject = scrub(m.subject)
        m.text_body = scrub(m.text_body)
        m.html_body = scrub(m.html_body)
        m.headers = _scrub_json(m.headers, scrub)
        m.gate_reasons = _scrub_json(m.gate_reasons, scrub)
        m.save(
            update_fields=[
                "from_address",
                "from_name",
                "subject",
                "text_body",
                "html_body",
                "headers",
                "gate_reasons",
            ]
        )
        counts["anonymised_messages"] += 1
    for t in Thread.objects.filter(pk__in=thread_ids):
        subject = scrub(t.subject)
        if subject != t.subject:
            Thread.objects.filter(pk=t.pk).update(
                subject=subject, subject_norm=scrub(t.subject_norm)
            )
    kept_mids = EmailMessage.objects.filter(pk__in=message_ids).values_list("message_id", flat=True)
    for tm in TrackedMessage.objects.filter(message_id__in=list(kept_mids)).exclude(subject=""):
        TrackedMessage.objects.filter(pk=tm.pk).update(subject=scrub(tm.subject))
    for meeting in Meeting.objects.filter(emails__in=message_ids).distinct():
        meeting.organizer = alias if meeting.organizer.lower() == address else meeting.organizer
        meeting.attendees = _scrub_json(meeting.attendees, scrub)
        meeting.summary = scrub(meeting.summary)
        meeting.save(update_fields=["organizer", "attendees", "summary"])
    # the original .eml holds the address in encodings a text replacement cannot reach
    raws = RawMessage.objects.filter(email_id__in=message_ids)
    raw_paths = sorted({p for p in raws.values_list("storage_path", flat=True) if p})
    counts["deleted_eml"] = raws.exclude(storage_path="").count()
    for raw in raws:
        raw.envelope_from = alias if raw.envelope_from.lower() == address else raw.envelope_from
        raw.envelope_to = [alias if str(a).lower() == address else a for a in raw.envelope_to]
        raw.storage_path = ""
        raw.save(update_fields=["envelope_from", "envelope_to", "storage_path"])
    still = set(
        RawMessage.objects.filter(storage_path__in=raw_paths).values_list("storage_path", flat=True)
    )
    raw_paths = [p for p in raw_paths if p not in still]
    # attachments whose bytes carry the address: dropped wherever the blob is used
    needle = address.encode()
    doomed_blobs = [
        b
        for b in Blob.objects.filter(attachments__email_id__in=message_ids).distinct()
        if _blob_mentions(b, needle)
    ]
    blob_paths = []
    if doomed_blobs:
        counts["dropped_attachments"] = Attachment.objects.filter(blob__in=doomed_blobs).update(
            blob=None, dropped="erased"
        )
        blob_paths = [b.storage_path for b in doomed_blobs]
        Blob.objects.filter(pk__in=[b.pk for b in doomed_blobs]).delete()
    return counts, raw_paths, blob_paths


def _unprocessed_raws_with(address: str) -> list[RawMessage]:
    """Raw mail never turned into a message (rejected, failed, pending) that carries it."""
    needle = address.encode()
    out = []
    unprocessed = RawMessage.objects.exclude(status=RawMessage.Status.PROCESSED)  # partial index
    for raw in unprocessed.filter(email__isnull=True).exclude(storage_path=""):
        if raw.envelope_from.lower() == address or address in [
            str(a).lower() for a in raw.envelope_to
        ]:
            out.append(raw)
            continue
        try:
            if needle in read_raw(raw.storage_path).lower():
                out.append(raw)
        except FileNotFoundError:
            continue
    return out


def _erase_consent_history(contact_ids: list[int]) -> int:
    """The one sanctioned deletion of consent history: a data-subject erasure. The append-only
    trigger (governance migration 0005) lets it through when
    this transaction has set `mailwarden.consent_erasure`."""
    if not contact_ids:
        return 0
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT set_config('mailwarden.consent_erasure', 'on', true)")
    n = ConsentRecord.objects.erase_for_contacts(contact_ids)
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT set_config('mailwarden.consent_erasure', 'off', true)")
    return n


def _run_erasure(req: DataSubjectRequest, report: Callable[[int], None]) -> None:
    address = req.address
    message_ids = _message_ids(address)
    holds = held_messages(message_ids) if message_ids else {}
    free = [i for i in message_ids if i not in holds]
    only, shared = _external_only(free, address)
    report(10)
    contact_ids = _contact_ids(address)
    held_contacts = set(
        Participant.objects.filter(
            email_id__in=list(holds), contact_id__in=contact_ids
        ).values_list("contact_id", flat=True)
    )
    retained: list[dict[str, Any]] = []
    by_hold: dict[tuple[str, str], int] = {}
    for hold_list in holds.values():
        for h in hold_list:
            key = (h["hold"], h.get("reason", ""))
            by_hold[key] = by_hold.get(key, 0) + 1
    for (name, reason), n in sorted(by_hold.items()):
        retained.append({"what": "messages", "count": n, "hold": name, "reason": reason})
    if held_contacts:
        retained.append(
            {
                "what": "contacts",
                "count": len(held_contacts),
                "hold": ", ".join(sorted({n for n, _ in by_hold})),
                "reason": "linked to held messages",
            }
        )
    with transaction.atomic():
        deleted, raw_paths, blob_paths = delete_messages(only)
        report(50)
        anon, anon_raws, anon_blobs = _anonymise_messages(shared, address)
        report(70)
        stray = _unprocessed_raws_with(address)
        stray_paths = sorted({r.storage_path for r in stray})
        RawMessage.objects.filter(pk__in=[r.pk for r in stray]).delete()
        still = set(
            RawMessage.objects.filter(storage_path__in=stray_paths).values_list(
                "storage_path", flat=True
            )
        )
        erasable = [c for c in contact_ids if c not in held_contacts]
        consents = _erase_consent_history(erasable)
        contacts = Contact.objects.filter(pk__in=erasable).delete()[1].get("crm.Contact", 0)
        rules = NeverLogRule.objects.filter(value=address).delete()[0]
        ErasedAddress.objects.get_or_create(
            address_hash=req.address_hash, defaults={"request": req}
        )
        counts = {
            "messages_deleted": deleted["messages"],
            "threads_deleted": deleted["threads"],
            "attachments_deleted": deleted["attachments"],
            **anon,
            "unprocessed_raw_deleted": len(stray),
            "contacts_deleted": contacts,
            "consent_records_deleted": consents,
            "never_log_rules_deleted": rules,
            "messages_retained": len(holds),
        }
        _complete(req, counts, retained=retained, address="")
        files_raw = raw_paths + anon_raws + [p for p in stray_paths if p not in still]
        files_blob = blob_paths + anon_blobs
        transaction.on_commit(lambda: unlink_files(files_raw, files_blob))


def erased_hashes() -> frozenset[str]:
    """Keyed hashes of every erased address (the gate refuses mail carrying one)."""
    return frozenset(ErasedAddress.objects.values_list("address_hash", flat=True))


def is_erased(addresses: Iterable[str], hashes: frozenset[str] | None = None) -> bool:
    hashes = erased_hashes() if hashes is None else hashes
    return bool(hashes) and any(keyed_hash(a) in hashes for a in addresses)


# --- objection ------------------------------------------------------------------------------


def _run_objection(req: DataSubjectRequest, report: Callable[[int], None]) -> None:
    from governance.consent import record_consent

    address = req.address
    with transaction.atomic():
        rule, created = NeverLogRule.objects.get_or_create(
            kind=NeverLogRule.Kind.ADDRESS,
            value=address,
            user=None,
            defaults={"note": f"Data-subject request #{req.pk} (objection)"},
        )
        if created:
            record_event(
                "governance.neverlogrule.created",
                actor="worker",
                obj=rule,
                detail={"kind": rule.kind, "personal": False, "source": f"dsr:{req.pk}"},
            )
        withdrawn = 0
        for contact in Contact.objects.filter(pk__in=_contact_ids(address)):
            for purpose, basis, act in (
                (
                    ConsentRecord.Purpose.PROCESSING,
                    ConsentRecord.Basis.NONE,
                    ConsentRecord.Action.WITHDRAWN,
                ),
                (
                    ConsentRecord.Purpose.TRACKING,
                    ConsentRecord.Basis.CONSENT,
                    ConsentRecord.Action.REFUSED,
                ),
            ):
                record_consent(
                    contact.pk,
                    purpose=purpose,
                    basis=basis,
                    action=act,
                    channel=ConsentRecord.Channel.DSR,
                    source=f"Data-subject request #{req.pk}",
                    actor="worker",
                )
                withdrawn += 1
        _complete(req, {"never_log_rules": int(created), "consents_withdrawn": withdrawn})
