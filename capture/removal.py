"""Removing stored mail that a never-log rule matches (the offer made when a rule is added).

An address rule matches mail where the address is a participant; a domain rule, mail with any
participant in the domain or a subdomain. An org-wide rule removes the whole message; a personal
rule only its owner's captures, and a message only when nobody else captured it. With a message
go its raw bytes, participants, attachments (and blobs nothing else uses), and its thread when
the thread is left empty. governance/never_log.py reaches these functions by hook and task name.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Q, QuerySet

from capture.holds import messages_on_hold
from capture.models import Attachment, Blob, Capture, EmailMessage, Participant, RawMessage, Thread
from capture.storage import delete_blob, delete_raw
from governance.audit import record_event
from governance.models import NeverLogRule


def _participant_filter(rule: NeverLogRule) -> Q:
    if rule.kind == NeverLogRule.Kind.ADDRESS:
        return Q(address=rule.value)
    return Q(address__endswith=f"@{rule.value}") | Q(address__endswith=f".{rule.value}")


def matching_messages(rule: NeverLogRule) -> QuerySet[EmailMessage]:
    """Stored messages the rule matches (for a personal rule: those its owner captured)."""
    ids = Participant.objects.filter(_participant_filter(rule)).values("email_id")
    qs = EmailMessage.objects.filter(pk__in=ids)
    if rule.user_id:
        qs = qs.filter(pk__in=Capture.objects.filter(user_id=rule.user_id).values("email_id"))
    return qs


def _doomed_messages(rule: NeverLogRule) -> QuerySet[EmailMessage]:
    """The matching messages that go entirely (personal rule: nobody else captured them);
    never those a legal hold covers (capture/holds.py)."""
    qs = matching_messages(rule).exclude(messages_on_hold())
    if rule.user_id:
        others = Capture.objects.exclude(user_id=rule.user_id)  # NULL users included
        qs = qs.exclude(pk__in=others.values("email_id"))
    return qs


def preview_removal(rule: NeverLogRule) -> dict[str, int]:
    """Messages, threads and attachments that `remove_never_logged` would delete."""
    doomed = _doomed_messages(rule)
    ids = list(doomed.values_list("pk", flat=True))
    thread_ids = set(doomed.values_list("thread_id", flat=True))
    # a thread goes when every message it holds goes
    remaining = (
        EmailMessage.objects.filter(thread_id__in=thread_ids)
        .exclude(pk__in=ids)
        .values_list("thread_id", flat=True)
        .distinct()
    )
    return {
        "messages": len(ids),
        "threads": len(thread_ids - set(remaining)),
        "attachments": Attachment.objects.filter(email_id__in=ids).count(),
    }


def remove_never_logged(rule_id: int) -> dict[str, int]:
    """Delete the stored mail a never-log rule matches; audited with counts (idempotent)."""
    rule = NeverLogRule.objects.filter(pk=rule_id).first()
    if rule is None:
        return {"messages": 0, "threads": 0, "attachments": 0, "captures": 0}
    with transaction.atomic():
        captures = 0
        if rule.user_id:
            own = Capture.objects.filter(
                user_id=rule.user_id, email__in=matching_messages(rule)
            ).exclude(email__in=_doomed_messages(rule))
            shared_raws = list(own.values_list("raw_id", flat=True))
            captures = len(shared_raws)
            own.delete()
            raw_paths = _delete_raws(shared_raws)
        else:
            raw_paths = []
        doomed = list(_doomed_messages(rule).values_list("pk", flat=True))
        deleted, paths, blob_paths = delete_messages(doomed)
        raw_paths += paths
        captures += deleted["captures"]
        counts = {
            "messages": deleted["messages"],
            "threads": deleted["threads"],
            "attachments": deleted["attachments"],
            "captures": captures,
        }
        record_event(
            "never_log.removed",
            actor="worker",
            obj=rule,
            detail={"rule": rule.pk, "personal": rule.user_id is not None, **counts},
        )
        transaction.on_commit(lambda: unlink_files(raw_paths, blob_paths))
    return counts


def delete_messages(ids: list[int]) -> tuple[dict[str, int], list[str], list[str]]:
    """Delete messages with their raw rows, participants, attachments and the threads left
    empty; returns (counts, raw file paths, blob file paths) to unlink once the caller's
    transaction commits (`unlink_files`). Also used by data-subject erasure (capture/dsr.py)."""
    if not ids:
        return {"messages": 0, "threads": 0, "attachments": 0, "captures": 0}, [], []
    thread_ids = set(EmailMessage.objects.filter(pk__in=ids).values_list("thread_id", flat=True))
    raw_ids = list(Capture.objects.filter(email_id__in=ids).values_list("raw_id", flat=True))
    raw_ids += [
        r
        for r in EmailMessage.objects.filter(pk__in=ids).values_list("first_raw_id", flat=True)
        if r
    ]
    raw_ids += list(RawMessage.objects.filter(email_id__in=ids).values_list("pk", flat=True))
    raw_ids = sorted(set(raw_ids))
    blob_ids = set(
        Attachment.objects.filter(email_id__in=ids, blob__isnull=False).values_list(
            "blob_id", flat=True
        )
    )
    attachments = Attachment.objects.filter(email_id__in=ids).count()
    messages = EmailMessage.objects.filter(pk__in=ids).delete()[1].get("capture.EmailMessage", 0)
    raw_paths = _delete_raws(raw_ids)
    threads = _settle_threads(thread_ids)
    blob_paths = _delete_unused_blobs(blob_ids)
    counts = {
        "messages": messages,
        "threads": threads,
        "attachments": attachments,
        "captures": len(raw_ids),
    }
    return counts, raw_paths, blob_paths


def _delete_raws(raw_ids: list[int]) -> list[str]:
    """Delete raw message rows; the paths of files no other raw message shares."""
    if not raw_ids:
        return []
    paths = set(RawMessage.objects.filter(pk__in=raw_ids).values_list("storage_path", flat=True))
    RawMessage.objects.filter(pk__in=raw_ids).delete()
    still = set(
        RawMessage.objects.filter(storage_path__in=paths).values_list("storage_path", flat=True)
    )
    return sorted(p for p in paths - still if p)


def _settle_threads(thread_ids: set[int]) -> int:
    """Recount the touched threads and delete the empty ones; the number deleted."""
    if not thread_ids:
        return 0
    counts = dict(
        EmailMessage.objects.filter(thread_id__in=thread_ids)
        .values("thread_id")
        .annotate(n=Count("pk"))
        .values_list("thread_id", "n")
    )
    empty = [t for t in thread_ids if not counts.get(t)]
    for tid, n in counts.items():
        Thread.objects.filter(pk=tid).update(message_count=n)
    Thread.objects.filter(pk__in=empty).delete()
    return len(empty)


def _delete_unused_blobs(blob_ids: set[int]) -> list[str]:
    unused = Blob.objects.filter(pk__in=blob_ids, attachments__isnull=True)
    paths = list(unused.values_list("storage_path", flat=True))
    unused.delete()
    return paths


def unlink_files(raw_paths: list[str], blob_paths: list[str]) -> None:
    for rel in raw_paths:
        delete_raw(rel)
    for rel in blob_paths:
        delete_blob(rel)
