"""Capture admin: one module per area so the pages stay readable."""

from __future__ import annotations

from capture.admin import (  # noqa: F401  (registers ModelAdmins and the record panel)
    categories,
    channels,
    dsr,
    linking,
    mailboxes,
    meetings,
    messages,
    privacy,  # after messages: adds actions to its Thread admin
    retention,
    timeline,
    tracking,
)
