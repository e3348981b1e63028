"""Outbound webhooks: signed notices of changes to another system (the CRM of record).

Not to be confused with capture/webhooks/, the *inbound* ESP webhooks that bring mail in.

- events.py        the event types and which audit actions they come from, the payloads
- outbox.py        the audit listener writing outbox rows in the change's own transaction
- destinations.py  the SSRF guard: URL checks, resolve once, refuse non-public addresses
- signing.py       secrets and Standard Webhooks signatures (the `standardwebhooks` package)
- delivery.py      sending in order per subscription, retries with backoff and jitter,
                   the attempt log, auto-disable, replay, the sweeper
- subscriptions.py creating, changing, rotating and deleting subscriptions (audited)
- tasks.py, admin.py: the doors (the API is governance/api/webhooks.py)

docs/webhooks.md, "Outbound webhooks", describes it for receivers and operators.
"""
