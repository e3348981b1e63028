from __future__ import annotations

from capture.models.addin import AddinDeviceGrant
from capture.models.channels import CaptureAddress, MailboxConnection, MailboxFolder, SmtpRateEvent
from capture.models.dsr import DataSubjectRequest, ErasedAddress
from capture.models.keys import DataKey
from capture.models.linkrules import LinkRule, ThreadUnlink, UnmatchedReference
from capture.models.messages import (
    Attachment,
    Blob,
    Capture,
    EmailMessage,
    Meeting,
    MeetingMessage,
    MeetingOverride,
    MessageRef,
    Participant,
    ReviewItem,
    Thread,
    ThreadLink,
)
from capture.models.raw import RawMessage
from capture.models.retention import (
    BinnedBlob,
    BinnedMessage,
    DispositionReview,
    ExpiringMessage,
    ExpiryJob,
    FileDeletion,
    LegalHold,
    PurgeRun,
    RetentionPolicy,
)
from capture.models.timeline import Category, TimelinePin
from capture.models.tracking import TrackedContact, TrackedMessage, TrackingEvent

__all__ = [
    "AddinDeviceGrant",
    "Attachment",
    "BinnedBlob",
    "BinnedMessage",
    "Blob",
    "Capture",
    "CaptureAddress",
    "Category",
    "DataKey",
    "DataSubjectRequest",
    "DispositionReview",
    "EmailMessage",
    "ErasedAddress",
    "ExpiringMessage",
    "ExpiryJob",
    "FileDeletion",
    "LegalHold",
    "LinkRule",
    "MailboxConnection",
    "MailboxFolder",
    "Meeting",
    "MeetingMessage",
    "MeetingOverride",
    "MessageRef",
    "Participant",
    "PurgeRun",
    "RawMessage",
    "RetentionPolicy",
    "ReviewItem",
    "SmtpRateEvent",
    "Thread",
    "ThreadLink",
    "ThreadUnlink",
    "TimelinePin",
    "TrackedContact",
    "TrackedMessage",
    "TrackingEvent",
    "UnmatchedReference",
]
