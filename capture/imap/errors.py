"""IMAP sync errors: all are CaptureErrors; each says whether retrying can help."""

from __future__ import annotations

from capture.errors import CaptureError


class MailboxSyncError(CaptureError):
    """A sync run failed; recorded on the MailboxConnection and retried with backoff."""


class MailboxAuthFailed(MailboxSyncError):
    """The server refused the credentials (or they cannot be decrypted): counts toward pausing."""


class MailboxUnreachable(MailboxSyncError):
    """Connection refused, reset, timed out, TLS failed, or the server broke the protocol."""


class LeaseLost(MailboxSyncError):
    """Another worker took the mailbox over (our lease expired): stop without committing."""
