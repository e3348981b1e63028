"""Key rotation: re-wrap every data key and re-encrypt every mailbox secret under the newest
master key (`manage.py rotate_keys`). Files are never read or rewritten: a data key's wrapped
form is 60 bytes in a DataKey row.

Resumable by construction: each chunk commits on its own and the next run (or the next
chunk) picks the rows not yet under the newest key, so an interrupted rotation just runs
again. Rows whose master key is not configured any more are counted as `unavailable` and
left as they are (their files cannot be read either).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection, transaction

from capture.models import DataKey, MailboxConnection
from core.db.bulk import execute_binary
from governance import crypto
from governance.audit import record_event

Progress = Callable[[int], None]


@dataclass
class RotationReport:
    data_keys: int = 0
    secrets: int = 0
    unavailable: int = 0

    def summary(self) -> str:
        return (
            f"re-wrapped {self.data_keys} data key(s), re-encrypted {self.secrets} mailbox "
            f"secret(s); {self.unavailable} item(s) under a master key no longer configured"
        )


def pending() -> tuple[int, int]:
    """(data keys, mailbox secrets) not yet under the newest master key."""
    newest = crypto.keyring().newest.key_id
    keys = DataKey.objects.exclude(key_id=newest).count()
    secrets = (
        MailboxConnection.objects.exclude(secret_encrypted="")
        .exclude(secret_encrypted__startswith=f"{crypto.TOKEN_PREFIX}{newest}:")
        .count()
    )
    return keys, secrets


def _write_back(rows: list[tuple[int, str, bytes]]) -> None:
    table = DataKey._meta.db_table
    if connection.vendor == "postgresql":
        # arrays bound server-side in binary: bytea as text literals cost more than the crypto
        execute_binary(
            f"UPDATE {table} AS d SET key_id = t.k, wrapped = t.w "  # noqa: S608
            "FROM unnest(%b::bigint[], %b::text[], %b::bytea[]) AS t(i, k, w) WHERE d.id = t.i",
            [[r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]],
        )
        return
    with connection.cursor() as cursor:
        if True:
            cursor.executemany(
                f"UPDATE {table} SET key_id = %s, wrapped = %s WHERE id = %s",  # noqa: S608
                [(k, w, i) for i, k, w in rows],
            )


def rotate_data_keys(*, chunk: int = 5000, progress: Progress | None = None) -> tuple[int, int]:
    """Re-wrap data keys under the newest master key; returns (re-wrapped, unavailable)."""
    ring = crypto.keyring()
    newest = ring.newest
    done = skipped = 0
    after = 0
    while True:
        with transaction.atomic():
            batch = list(
                DataKey.objects.filter(pk__gt=after)
                .exclude(key_id=newest.key_id)
                .order_by("pk")
                .select_for_update(
                    skip_locked=connection.features.has_select_for_update_skip_locked
                )
                .values_list("pk", "name", "key_id", "wrapped")[:chunk]
            )
            if not batch:
                break
            rows = []
            for pk, name, key_id, wrapped in batch:
                try:
                    plain = crypto.unwrap_data_key(key_id, wrapped, name, ring)
                except crypto.KeyUnavailable:
                    skipped += 1
                    continue
                rows.append((pk, *crypto.wrap_data_key(plain, name, newest)))
            if rows:
                _write_back(rows)
            after = batch[-1][0]
        done += len(rows)
        if progress:
            progress(len(batch))
    return done, skipped


def rotate_mailbox_secrets(*, progress: Progress | None = None) -> tuple[int, int]:
    """Re-encrypt mailbox secrets under the newest master key; returns (done, unavailable)."""
    done = skipped = 0
    qs = MailboxConnection.objects.exclude(secret_encrypted="").order_by("pk")
    for pk in list(qs.values_list("pk", flat=True)):
        with transaction.atomic():
            mailbox = MailboxConnection.objects.select_for_update().get(pk=pk)
            token = mailbox.secret_encrypted
            if token and not crypto.secret_is_current(token):
                try:
                    mailbox.secret_encrypted = crypto.rotate_secret(token)
                except crypto.SecretDecryptError:
                    skipped += 1
                else:
                    mailbox.save(update_fields=["secret_encrypted", "updated"])
                    done += 1
        if progress:
            progress(1)
    return done, skipped


def rotate_keys(*, chunk: int = 5000, progress: Progress | None = None) -> RotationReport:
    """Everything under the newest master key, with one audit event."""
    keys, key_skips = rotate_data_keys(chunk=chunk, progress=progress)
    secrets, secret_skips = rotate_mailbox_secrets(progress=progress)
    report = RotationReport(data_keys=keys, secrets=secrets, unavailable=key_skips + secret_skips)
    record_event(
        "keys.rotated",
        channel="command",
        detail={
            "key_id": crypto.keyring().newest.key_id,
            "data_keys": keys,
            "secrets": secrets,
            "unavailable": report.unavailable,
        },
    )
    return report
