from __future__ import annotations

from django.db import models
from django.utils import timezone


class DataKey(models.Model):
    """The wrapped data key of one encrypted file (capture/storage.py, governance/crypto.py).

    `name` is the file's logical name (`raw/ab/…eml.enc`, `blob/ab/…bin.enc`) — the reference
    the file itself carries — or `naming-key` for the key that names encrypted files.
    Rotation re-wraps `wrapped` under the newest master key; deleting the row destroys the
    file's content everywhere, copies in backups included (crypto-shredding).
    """

    name = models.CharField(max_length=320)
    key_id = models.CharField(max_length=16, help_text="Id of the master key that wraps it.")
    wrapped = models.BinaryField(help_text="Nonce + AES-GCM-wrapped 256-bit data key.")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        # Not unique=True: no "_like" index on PostgreSQL (see EmailMessage).
        constraints = [models.UniqueConstraint(fields=["name"], name="cap_datakey_name_unique")]
        # No index on key_id, and half-full pages on PostgreSQL (migration 0011): rotation
        # rewrites key_id and wrapped only, which then are HOT updates that touch no index
        # (bench/crypto.py: ~1.4x the re-wraps a second). Counting what is left to rotate
        # is a sequential scan, once per rotate_keys run.

    def __str__(self) -> str:
        return self.name
