"""What kind of mail a message is from its headers: a bounce, an out-of-office or other
automatic reply, bulk or list mail, a draft."""

from __future__ import annotations

import re
from email.message import Message
from email.utils import collapse_rfc2231_value

from capture.mime.headers import plain_params

__all__ = ["classify", "is_draft", "report_type"]

_OOO_SUBJECT = re.compile(
    r"^\s*(?:out of (?:the )?office|automatic reply|auto[- ]?reply|autoreply|"
    r"abwesenheitsnotiz|automatische antwort|abwesend|r[ée]ponse automatique|absence|"
    r"respuesta autom[aá]tica|risposta automatica|fuori ufficio|automatisch antwoord|"
    r"afwezig|autosvar|fr[åa]nvaro|poza biurem|odpowied[źz] automatyczna)\b\s*(?::|$)",
    re.IGNORECASE,
)


def classify(first: dict[str, str], content_type: str, report_type: str, subject: str) -> str:
    """The kind of automatic mail: dsn, ooo, auto-replied, auto-generated, bulk; "" if none."""
    if content_type == "multipart/report" and report_type == "delivery-status":
        return "dsn"
    auto_submitted = first.get("auto-submitted", "").strip().lower()
    auto_submitted = auto_submitted.split(";", 1)[0].strip()
    if (
        first.get("x-autoreply", "").strip()
        or first.get("x-autorespond", "").strip()
        or _OOO_SUBJECT.match(subject)
    ):
        return "ooo"
    if auto_submitted and auto_submitted != "no":
        return "auto-replied" if auto_submitted == "auto-replied" else "auto-generated"
    if content_type == "multipart/report":
        return "auto-generated"  # read receipts (disposition-notification) and the like
    precedence = first.get("precedence", "").strip().lower()
    if precedence in ("bulk", "list", "junk"):
        return "bulk"
    if "list-id" in first or "list-unsubscribe" in first:
        return "bulk"
    if precedence == "auto_reply":
        return "auto-replied"
    return ""


def is_draft(first: dict[str, str]) -> bool:
    """An unsent draft (Outlook X-Unsent, Thunderbird, Apple Mail), not a sent message."""
    if first.get("x-unsent", "").strip().lower() in ("1", "yes", "true"):
        return True
    if "x-mozilla-draft-info" in first:
        return True
    return first.get("x-uniform-type-identifier", "").strip() == "com.apple.mail-draft"


def report_type(msg: Message, first: dict[str, str]) -> str:
    """The report-type parameter of a message's Content-Type, lowercase ("" without one)."""
    ct_params = plain_params(msg, "content-type", first)
    if ct_params is not None:
        value = ct_params.get("report-type") or ""
    else:
        try:
            value = (msg.get_param("report-type") or "") if msg.get_content_type() else ""
        except Exception:
            value = ""
    if not isinstance(value, str):
        value = collapse_rfc2231_value(value)
    return value.lower()
