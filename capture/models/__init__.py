from __future__ import annotations

from capture.models.channels import CaptureAddress, MailboxConnection, MailboxFolder, SmtpRateEvent
from capture.models.linkrules import LinkRule, ThreadUnlink, UnmatchedReference
from capture.models.messages import (
    Attachment,
    Blob,
    Capture,
    EmailMessage,
    Meeting,
    MessageRef,
    Participant,
    ReviewItem,
    Thread,
    ThreadLink,
)
from capture.models.raw import RawMessage

__all__ = [
    "Attachment",
    "Blob",
    "Capture",
    "CaptureAddress",
    "EmailMessage",
    "LinkRule",
    "MailboxConnection",
    "MailboxFolder",
    "Meeting",
    "MessageRef",
    "Participant",
    "RawMessage",
    "ReviewItem",
    "SmtpRateEvent",
    "Thread",
    "ThreadLink",
    "ThreadUnlink",
    "UnmatchedReference",
]
