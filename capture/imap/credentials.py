"""A mailbox's password or OAuth2 access token, encrypted at rest (governance.crypto)."""

from __future__ import annotations

from capture.models import MailboxConnection
from governance.crypto import decrypt_secret, encrypt_secret


def set_secret(mailbox: MailboxConnection, plain: str) -> None:
    """Encrypt `plain` into mailbox.secret_encrypted (the caller saves the row)."""
    mailbox.secret_encrypted = encrypt_secret(plain) if plain else ""


def get_secret(mailbox: MailboxConnection) -> str:
    """The decrypted password/token ("" when none is set); raises SecretDecryptError."""
    if not mailbox.secret_encrypted:
        return ""
    return decrypt_secret(mailbox.secret_encrypted)
