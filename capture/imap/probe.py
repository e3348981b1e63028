"""Test a mailbox connection: log in, list the folders, log out. Nothing is synced.

The admin's "Test connection" action and the API's `test` action call this before (or
instead of) a sync: it answers whether the stored host, security and credentials work and
which folders a sync would read, within MAILWARDEN_IMAP_TIMEOUT_SECONDS per network step
(connect_mailbox's socket timeout). No checkpoint, status field or lease is touched, so a
running sync is never disturbed; the attempt and its outcome (no secret, no folder names
beyond the plan) are audited as `mailbox.connection_tested`.
"""

from __future__ import annotations

import imaplib
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from imapclient.exceptions import IMAPClientError

from capture.imap.credentials import get_secret
from capture.imap.errors import MailboxAuthFailed, MailboxSyncError
from capture.imap.folders import parse_folder_list, plan_folders
from capture.imap.sync import _shutdown, connect_mailbox, describe_error, scrub_secret
from capture.models import MailboxConnection
from governance.audit import record_event
from governance.crypto import SecretDecryptError


@dataclass
class ConnectionCheck:
    ok: bool
    status: str  # "ok", "auth_failed", "unreachable"
    error: str = ""
    folders: list[str] = field(default_factory=list)  # every folder on the server
    would_sync: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # configured, not on the server

    def summary(self) -> str:
        if not self.ok:
            return f"{self.status}: {self.error}"
        text = (
            f"logged in; {len(self.folders)} folder(s) on the server; "
            f"would sync {len(self.would_sync)}: {', '.join(self.would_sync) or '-'}"
        )
        if self.missing:
            text += f"; configured but missing: {', '.join(self.missing)}"
        return text


def check_connection(
    mailbox: MailboxConnection, *, actor: Any = None, channel: str = "", address: str = ""
) -> ConnectionCheck:
    """Log in to the mailbox's server and list its folders; audited, never raises for the
    server's answer (a refused login or an unreachable host is a result, not an error)."""
    secret = ""
    try:
        secret = get_secret(mailbox)
        client = connect_mailbox(mailbox, secret)
        try:
            listing = parse_folder_list(client.list_folders())
            client.logout()
        finally:
            _shutdown(client)
    except SecretDecryptError:
        check = ConnectionCheck(False, "auth_failed", "stored secret cannot be decrypted")
    except MailboxAuthFailed as e:
        check = ConnectionCheck(False, "auth_failed", scrub_secret(str(e), secret))
    except MailboxSyncError as e:
        check = ConnectionCheck(False, "unreachable", scrub_secret(str(e), secret))
    except (OSError, IMAPClientError, imaplib.IMAP4.error) as e:
        check = ConnectionCheck(False, "unreachable", scrub_secret(describe_error(e), secret))
    else:
        excluded = [*settings.MAILWARDEN_IMAP_EXCLUDED_FOLDERS, *(mailbox.excluded_folders or [])]
        plan = plan_folders(listing, mailbox.folders or [], excluded)
        check = ConnectionCheck(
            True,
            "ok",
            folders=[f.name for f in listing],
            would_sync=list(plan.sync),
            missing=list(plan.missing),
        )
    record_event(
        "mailbox.connection_tested",
        actor=actor,
        obj=mailbox,
        channel=channel,
        address=address,
        detail={
            "status": check.status,
            "error": check.error,
            "folders": len(check.folders),
            "would_sync": check.would_sync,
            "missing": check.missing,
        },
    )
    return check
