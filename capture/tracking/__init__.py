"""Consent-gated open and click tracking (docs/governance.md, "Tracking").

- tokens.py: signed, compact, expiring tokens (no database);
- machine.py: is an open or click likely a machine's (proxy, scanner, network, too soon);
- service.py: issuing tracking for a message about to be sent, recording events, summaries;
- views.py: the cheap public endpoints `/t/o/<token>` (1x1 GIF) and `/t/c/<token>` (redirect).
"""
