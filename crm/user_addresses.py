"""Self-service connected addresses and aliases: a user adds one, a code is mailed to it, and
only once the code comes back does the address count as the user's own (UserAddress.verified_at).

Codes are six digits, stored as a SHA-256 hash (salted with the row's id), valid for
CODE_TTL, single use, and refused after MAX_ATTEMPTS wrong tries (a new code must be asked for).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from crm.addresses import InvalidAddress, normalize_address
from crm.models import User, UserAddress
from governance.audit import record_event

CODE_TTL = timedelta(minutes=30)
MAX_ATTEMPTS = 5


class OwnAddressError(Exception):
    """A self-service address change was refused; `code` is a stable reason code."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def _code_hash(row_id: int, code: str) -> str:
    return hashlib.sha256(f"{row_id}:{code}".encode()).hexdigest()


def add_own_address(
    user: User,
    address: str,
    kind: str = UserAddress.Kind.ALIAS,
    *,
    actor: Any = None,
    channel: str = "",
    client: str = "",
) -> UserAddress:
    """Add an unverified address for `user` (or renew its code) and mail it a code."""
    try:
        normalized = normalize_address(address)
    except InvalidAddress as e:
        raise OwnAddressError(
            "invalid_address", gettext("Enter a valid e-mail address (%(e)s).") % {"e": e}
        ) from e
    if kind not in UserAddress.Kind.values:
        raise OwnAddressError(
            "invalid_kind",
            gettext("Kind must be one of %(values)s.") % {"values": UserAddress.Kind.values},
        )
    if user.email and user.email.strip().lower() == normalized:
        raise OwnAddressError("login_address", gettext("This is already your login e-mail."))
    code = f"{secrets.randbelow(10**6):06d}"
    with transaction.atomic():
        row = UserAddress.objects.select_for_update().filter(address=normalized).first()
        if row is not None and row.user_id != user.pk:
            raise OwnAddressError("address_taken", gettext("This address belongs to another user."))
        if row is not None and row.verified_at is not None:
            raise OwnAddressError("already_verified", gettext("This address is already yours."))
        if row is None:
            row = UserAddress.objects.create(
                user=user, address=normalized, kind=kind, verified_at=None
            )
        row.kind = kind
        row.code_hash = _code_hash(row.pk, code)
        row.code_expires = timezone.now() + CODE_TTL
        row.code_attempts = 0
        row.save(update_fields=["kind", "code_hash", "code_expires", "code_attempts", "updated"])
        record_event(
            "crm.user_address.added",
            actor=actor or user,
            obj=row,
            channel=channel,
            address=client,
            detail={"user": user.pk, "kind": kind, "verified": False},
        )
        transaction.on_commit(lambda: _mail_code(normalized, code))
    return row


def _mail_code(address: str, code: str) -> None:
    minutes = int(CODE_TTL.total_seconds() // 60)
    send_mail(
        subject="Your Mailwarden verification code",
        message=(
            f"Your verification code is {code}.\n\n"
            f"Enter it on your Mailwarden settings page within {minutes} minutes to confirm "
            "that this address is yours. If you did not ask for it, ignore this mail."
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[address],
    )


def verify_own_address(
    row: UserAddress, code: str, *, actor: Any = None, channel: str = "", client: str = ""
) -> UserAddress:
    """Check the mailed code; a right one verifies the address (single use)."""
    with transaction.atomic():
        row = UserAddress.objects.select_for_update().get(pk=row.pk)
        if row.verified_at is not None:
            raise OwnAddressError("already_verified", gettext("This address is already verified."))
        if not row.code_hash or row.code_attempts >= MAX_ATTEMPTS:
            raise OwnAddressError(
                "too_many_attempts", gettext("Too many wrong codes: ask for a new code.")
            )
        if row.code_expires is None or row.code_expires <= timezone.now():
            raise OwnAddressError(
                "code_expired", gettext("The code has expired: ask for a new code.")
            )
        if not hmac.compare_digest(row.code_hash, _code_hash(row.pk, str(code).strip())):
            row.code_attempts += 1
            row.save(update_fields=["code_attempts", "updated"])
            wrong = True
        else:
            wrong = False
            row.verified_at = timezone.now()
            row.code_hash = ""
            row.code_expires = None
            row.code_attempts = 0
            row.save(
                update_fields=[
                    "verified_at",
                    "code_hash",
                    "code_expires",
                    "code_attempts",
                    "updated",
                ]
            )
            record_event(
                "crm.user_address.verified",
                actor=actor or row.user,
                obj=row,
                channel=channel,
                address=client,
                detail={"user": row.user_id, "kind": row.kind},
            )
    if wrong:  # the attempt is counted (committed) before the refusal
        raise OwnAddressError("wrong_code", gettext("The code is not right."))
    return row


def remove_own_address(
    row: UserAddress, *, actor: Any = None, channel: str = "", client: str = ""
) -> None:
    """Remove one of a user's connected addresses or aliases."""
    with transaction.atomic():
        record_event(
            "crm.user_address.removed",
            actor=actor or row.user,
            obj=row,
            channel=channel,
            address=client,
            detail={"user": row.user_id, "kind": row.kind, "verified": row.verified_at is not None},
        )
        row.delete()
