"""The SMTP capture listener (`manage.py capture_smtpd`): see docs/smtp.md.

`LOOP_HEADER` is added to every message Mailwarden itself sends; the listener refuses any
message that carries it (550 5.7.1 loop detected), so our own mail is never re-captured.
"""

from __future__ import annotations

LOOP_HEADER = "X-Mailwarden-Loop"

__all__ = ["LOOP_HEADER"]
