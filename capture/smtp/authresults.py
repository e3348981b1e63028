"""Authentication-Results (RFC 8601) from a trusted upstream MTA.

Only headers whose authserv-id equals the configured one are read: anyone can write an
Authentication-Results header, so the upstream MTA must strip foreign ones with its own id
(Postfix with OpenDMARC/OpenDKIM does) and we trust nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# method=result, e.g. "dkim=fail", "spf=pass", "dmarc=fail (p=reject)".
_RESULT = re.compile(r"(?:^|;)\s*(dkim|spf|dmarc)\s*=\s*([a-z]+)", re.IGNORECASE)
_COMMENT = re.compile(r"\([^()]*\)")
CHECKED_METHODS = ("dmarc", "dkim", "spf")


def _authserv_id(value: str) -> str:
    # The authserv-id is the first token before ";" (an optional version number may follow it).
    head = _COMMENT.sub(" ", value).split(";", 1)[0].strip()
    return head.split()[0].lower() if head else ""


def parse_auth_results(values: Iterable[str], authserv_id: str) -> dict[str, str]:
    """method -> result from the headers stamped by `authserv_id`.

    A method with several results (two DKIM signatures) counts as "pass" when any passed,
    as DMARC does (RFC 7489 s. 4.2).
    """
    wanted = authserv_id.strip().lower()
    found: dict[str, str] = {}
    if not wanted:
        return found
    for raw in values:
        value = _COMMENT.sub(" ", " ".join(str(raw).split()))
        if _authserv_id(value) != wanted:
            continue
        for method, result in _RESULT.findall(value):
            method, result = method.lower(), result.lower()
            if found.get(method) != "pass":
                found[method] = result
    return found


def auth_failure(values: Iterable[str], authserv_id: str) -> str | None:
    """`"dmarc=fail"` (or dkim/spf) when the trusted upstream says a check failed, else None."""
    results = parse_auth_results(values, authserv_id)
    for method in CHECKED_METHODS:
        if results.get(method) == "fail":
            return f"{method}=fail"
    return None
