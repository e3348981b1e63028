"""Storing what the gate allows: bodies (truncated to the limit, flagged), attachments
(content-addressed, stored once; inline, oversize and blocked ones recorded as dropped with
the reason while the message is still logged) and the calendar events of meetings."""

from __future__ import annotations

import os

from django.conf import settings
from django.db import connection

from capture import storage
from capture.context import BatchContext, Work
from capture.mime import ParsedEmail
from capture.models import Attachment, Blob, EmailMessage
from core.db.bulk import bulk_insert, execute_binary, new_row


def body_fields(parsed: ParsedEmail, stored: str) -> dict:
    if stored == EmailMessage.Stored.FULL:
        return {
            "subject": parsed.subject,
            "text_body": parsed.text_body,
            "html_body": parsed.html_body,
            "body_truncated": parsed.body_truncated,
        }
    if stored == EmailMessage.Stored.SUBJECT:
        return {
            "subject": parsed.subject,
            "text_body": "",
            "html_body": "",
            "body_truncated": False,
        }
    return {"subject": "", "text_body": "", "html_body": "", "body_truncated": False}


def drop_reason(part, keep: list[str] | None, stored: str) -> str:
    if stored != EmailMessage.Stored.FULL:
        return Attachment.Dropped.POLICY
    if part.inline and not settings.MAILWARDEN_KEEP_INLINE_PARTS:
        return Attachment.Dropped.INLINE
    if part.size > settings.MAILWARDEN_MAX_ATTACHMENT_BYTES:
        return Attachment.Dropped.TOO_LARGE
    ext = os.path.splitext(part.filename.lower())[1]
    blocked = {
        b.lower() if b.startswith(".") else "." + b.lower()
        for b in settings.MAILWARDEN_BLOCKED_ATTACHMENT_TYPES
    }
    if ext and ext in blocked:
        return Attachment.Dropped.BLOCKED_TYPE
    if keep is not None and part.sha256 not in keep and part.filename not in keep:
        return Attachment.Dropped.NOT_SELECTED
    return Attachment.Dropped.KEPT


def store_attachments(ctx: BatchContext, work: Work) -> None:
    """Queue the message's attachment rows; new blob files are written, made durable and
    inserted once per batch by flush_blobs (a per-file fsync and get_or_create cost ~10 ms each)."""
    parsed, email = work.parsed, work.email
    assert parsed is not None and email is not None
    keep = work.raw.options.get("attachments")
    keep_list = [str(k) for k in keep] if isinstance(keep, list) else None
    blobs = known_blobs(ctx)
    pending = ctx.new_blobs
    for part in parsed.attachments:
        dropped = drop_reason(part, keep_list, work.stored)
        blob = None
        if not dropped:
            blob = blobs.get(part.sha256)
            if blob is None and part.sha256 not in pending:
                # written by flush_blobs, all of the batch's at once (one data-key statement)
                row = new_row(Blob, sha256=part.sha256, size=part.size, storage_path="")
                row._payload = part.payload  # type: ignore[attr-defined]
                pending[part.sha256] = row
        ctx.new_attachments.append(
            new_row(
                Attachment,
                email=email,
                blob=blob,
                filename=part.filename[:255],
                content_type=part.content_type[:127],
                size=part.size,
                sha256=part.sha256,
                inline=part.inline,
                content_id=part.content_id[:255],
                dropped=dropped,
            )
        )
    email.has_attachments = any(not a.inline for a in parsed.attachments)


def known_blobs(ctx: BatchContext) -> dict[str, Blob]:
    """Blobs already stored for any attachment of the batch (one query per batch)."""
    blobs = ctx.blobs
    if blobs is None:
        shas = {a.sha256 for w in ctx.works if w.parsed for a in w.parsed.attachments}
        blobs = {b.sha256: b for b in Blob.objects.filter(sha256__in=shas)} if shas else {}
        ctx.blobs = blobs
    return blobs


def flush_blobs(ctx: BatchContext) -> None:
    """Write the batch's new blob files (a few threads), make them durable (one syncfs),
    insert their rows, point the attachments at them. Runs before the batch commits, so no row names a file a crash lost."""
    pending = ctx.new_blobs
    if not pending:
        return
    rows = list(pending.values())
    paths = storage.save_blobs([(b._payload, b.sha256) for b in rows], fsync=False)  # type: ignore[attr-defined]
    for row, (_, rel) in zip(rows, paths, strict=True):
        row.storage_path = rel
        del row._payload  # type: ignore[attr-defined]
    storage.flush_blobs([b.storage_path for b in rows])
    bulk_insert(Blob, list(pending.values()), ignore_conflicts=True, batch_size=500)
    if connection.vendor == "postgresql":  # one binary array, not an IN list (context.py)
        ids = dict(
            execute_binary(
                f"SELECT sha256, id FROM {Blob._meta.db_table} WHERE sha256 = ANY(%b::text[])",  # noqa: S608
                [sorted(pending)],
                fetch=True,
            )
        )
    else:
        ids = dict(Blob.objects.filter(sha256__in=list(pending)).values_list("sha256", "pk"))
    for att in ctx.new_attachments:
        if att.blob_id is None and att.dropped == Attachment.Dropped.KEPT and att.sha256 in ids:
            att.blob_id = ids[att.sha256]
    pending.clear()


def store_meeting(ctx: BatchContext, work: Work) -> None:
    """Queue every VEVENT of the message's calendar; capture.meetings.store_meetings writes
    them for the whole batch once its messages are inserted."""
    parsed, email = work.parsed, work.email
    assert parsed is not None and email is not None
    ctx.new_meetings.extend((work, event) for event in parsed.calendar)
