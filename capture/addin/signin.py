"""Sign-in of the add-in without pasting a secret: a device-code grant (RFC 8628's flow).

1. the pane calls `start_grant` and shows the short user code (BCDF-GHJK);
2. the user, signed in to Mailwarden in a browser, enters it on /addin/activate/ and approves
   (`approve_grant`);
3. the pane polls `poll_grant` with its device code; after approval it receives a new API
   token limited to ADDIN_SCOPES, once (the grant is consumed).

Sign-out revokes that token (`sign_out`). Every step that changes something is audited.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from capture.models import AddinDeviceGrant
from crm.models import ApiToken, User
from crm.services import issue_api_token, revoke_api_tokens
from governance.audit import record_event

# What a pane token may do: read and save mail, read records and create contacts.
ADDIN_SCOPES = (
    ApiToken.Scope.CAPTURE_READ.value,
    ApiToken.Scope.CAPTURE_WRITE.value,
    ApiToken.Scope.CRM_READ.value,
    ApiToken.Scope.CRM_WRITE.value,
)
TOKEN_NAME = "Outlook add-in"  # noqa: S105 (a label, not a secret)
GRANT_LIFETIME = timedelta(minutes=10)
TOKEN_LIFETIME = timedelta(days=90)
POLL_INTERVAL = 2  # seconds the pane waits between polls
# No vowels (no words), no look-alikes: 20 letters, 8 of them = 2.6e10 codes.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8


class GrantError(Exception):
    """The poll's answer when there is no token (yet): an RFC 8628 error code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class StartedGrant:
    device_code: str
    user_code: str  # formatted XXXX-XXXX
    expires_in: int
    interval: int


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str


def _hash(device_code: str) -> str:
    return hashlib.sha256(device_code.encode()).hexdigest()


def format_user_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def normalize_user_code(value: str) -> str:
    """What a person typed (any case, dashes, spaces) -> the stored form, or ""."""
    code = "".join(ch for ch in str(value).upper() if ch.isalnum())
    if len(code) != USER_CODE_LENGTH or any(ch not in USER_CODE_ALPHABET for ch in code):
        return ""
    return code


def start_grant(*, client: str = "") -> StartedGrant:
    """A new pending grant; the device code is returned once and only its hash stored."""
    device_code = secrets.token_urlsafe(32)
    now = timezone.now()
    while True:
        user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
        if not AddinDeviceGrant.objects.filter(user_code=user_code, expires_at__gt=now).exists():
            break
    AddinDeviceGrant.objects.create(
        device_code_hash=_hash(device_code),
        user_code=user_code,
        expires_at=now + GRANT_LIFETIME,
        client=client[:200],
    )
    return StartedGrant(
        device_code=device_code,
        user_code=format_user_code(user_code),
        expires_in=int(GRANT_LIFETIME.total_seconds()),
        interval=POLL_INTERVAL,
    )


def pending_grant(user_code: str) -> AddinDeviceGrant | None:
    """The unexpired, undecided grant with this user code (as typed), or None."""
    code = normalize_user_code(user_code)
    if not code:
        return None
    return (
        AddinDeviceGrant.objects.filter(
            user_code=code,
            expires_at__gt=timezone.now(),
            approved_at__isnull=True,
            denied_at__isnull=True,
        )
        .order_by("-id")
        .first()
    )


def approve_grant(
    grant: AddinDeviceGrant, user: User, *, approve: bool, actor: Any, address: str = ""
) -> None:
    """The signed-in user approves (or denies) the code the pane shows."""
    now = timezone.now()
    with transaction.atomic():
        locked = AddinDeviceGrant.objects.select_for_update().get(pk=grant.pk)
        if locked.approved_at or locked.denied_at or locked.expires_at <= now:
            raise GrantError("expired_token", "This code has expired or was used already.")
        locked.user = user
        if approve:
            locked.approved_at = now
        else:
            locked.denied_at = now
        locked.save(update_fields=["user", "approved_at", "denied_at", "updated"])
        record_event(
            "addin.sign_in_approved" if approve else "addin.sign_in_denied",
            actor=actor,
            obj=locked,
            channel="web",
            address=address,
            detail={"client": locked.client[:100]},
        )


def poll_grant(device_code: str) -> IssuedToken:
    """The pane's poll: a new token once the grant is approved (raises GrantError otherwise)."""
    now = timezone.now()
    with transaction.atomic():
        grant = (
            AddinDeviceGrant.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(device_code_hash=_hash(str(device_code)))
            .first()
        )
        if grant is None:
            raise GrantError("invalid_grant", "Unknown device code.")
        if grant.consumed_at is not None:
            raise GrantError("invalid_grant", "This sign-in has been completed already.")
        if grant.denied_at is not None:
            raise GrantError("access_denied", "The sign-in was denied.")
        if grant.approved_at is None:
            if grant.expires_at <= now:
                raise GrantError("expired_token", "The code expired; start again.")
            too_soon = grant.last_polled_at and (
                (now - grant.last_polled_at).total_seconds() < POLL_INTERVAL / 2
            )
            AddinDeviceGrant.objects.filter(pk=grant.pk).update(last_polled_at=now)
            if too_soon:
                raise GrantError("slow_down", "Poll less often.")
            raise GrantError("authorization_pending", "Waiting for approval.")
        user = grant.user
        assert user is not None
        if not user.is_active:
            raise GrantError("access_denied", "The approving account is inactive.")
        token, secret = issue_api_token(
            user=user, scopes=ADDIN_SCOPES, name=TOKEN_NAME, expires_at=now + TOKEN_LIFETIME
        )
        grant.token = token
        grant.consumed_at = now
        grant.save(update_fields=["token", "consumed_at", "updated"])
        record_event(
            "addin.signed_in",
            actor=token,
            obj=token,
            channel="api",
            detail={"grant": grant.pk, "scopes": list(ADDIN_SCOPES)},
        )
    return IssuedToken(token, secret)


def sign_out(token: ApiToken, *, actor: Any, address: str = "") -> int:
    """Revoke the pane's token (audited by revoke_api_tokens)."""
    return revoke_api_tokens([token], actor=actor, channel="api", address=address)
