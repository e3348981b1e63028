"""Capture admin: one module per area so the pages stay readable."""

from __future__ import annotations

from capture.admin import channels, linking, mailboxes, messages  # noqa: F401  (registers ModelAdmins)
