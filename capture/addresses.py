"""Capture addresses (`log+<token>@<capture domain>`) and who may send to them.

A user BCCs or forwards mail to their capture address; the SMTP listener resolves the
recipient with `resolve_capture_address` and checks the sender with `sender_allowed`
(HubSpot's rule: the sending address must be the user's login address, a connected address
or an alias). Rotation revokes the old token (it then answers 550 5.1.1) and is audited.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from capture.models import CaptureAddress
from crm.addresses import InvalidAddress, normalize_address
from crm.models import User, UserAddress
from governance.audit import record_event

LOCAL_PREFIX = "log+"
# How long the SMTP listener may reuse a resolved address (and its owner's sender list).
# A change made in this process (rotate, revoke, create) clears it at once; a change made in
# another process (the web server) reaches a separate listener process within this time.
RESOLVE_CACHE_SECONDS = 5.0
_RESOLVE_CACHE_MAX = 10_000
_resolve_cache: dict[str, tuple[float, ResolvedAddress | None]] = {}
_resolve_lock = threading.Lock()


@dataclass(frozen=True)
class ResolvedAddress:
    """What the listener needs about a capture address, without ORM objects."""

    id: int
    user_id: int
    kind: str
    allowed_senders: frozenset[str] | None  # None: a shared address (any active user)


def forget_resolved_addresses() -> None:
    """Drop the listener's resolution cache (called by every change to an address)."""
    with _resolve_lock:
        _resolve_cache.clear()


def get_or_create_capture_address(
    user: User,
    kind: str = CaptureAddress.Kind.PERSONAL,
    *,
    actor: object = None,
    channel: str = "",
    address: str = "",
) -> CaptureAddress:
    """The user's active capture address of this kind, created (and audited) when missing."""
    with transaction.atomic():
        existing = (
            CaptureAddress.objects.select_for_update()
            .filter(user=user, kind=kind, active=True)
            .order_by("id")
            .first()
        )
        if existing is not None:
            return existing
        return create_capture_address(
            user, kind=kind, actor=actor, channel=channel, address=address
        )


def create_capture_address(
    user: User,
    *,
    kind: str = CaptureAddress.Kind.PERSONAL,
    label: str = "",
    actor: object = None,
    channel: str = "",
    address: str = "",
) -> CaptureAddress:
    """A new, additional capture address for `user` (a user may hold several)."""
    with transaction.atomic():
        addr = CaptureAddress.objects.create(user=user, kind=kind, label=label[:120])
        forget_resolved_addresses()
        record_event(
            "capture_address.create",
            actor=actor if actor is not None else "system",
            obj=addr,
            channel=channel,
            address=address,
            detail={"user_id": user.pk, "kind": kind},
        )
    return addr


def create_shared_capture_address(
    owner: User, label: str, *, actor: object = None
) -> CaptureAddress:
    """An org-wide address for a shared inbox; mail to it is captured for `owner`."""
    return create_capture_address(owner, kind=CaptureAddress.Kind.SHARED, label=label, actor=actor)


def revoke_capture_address(
    addr: CaptureAddress, actor: object, *, channel: str = "", address: str = ""
) -> CaptureAddress:
    """Deactivate an address: mail to it is refused with 550 5.1.1 from now on."""
    with transaction.atomic():
        locked = CaptureAddress.objects.select_for_update().get(pk=addr.pk)
        if locked.active:
            locked.active = False
            locked.revoked_at = timezone.now()
            locked.save(update_fields=["active", "revoked_at", "updated"])
            record_event(
                "capture_address.revoke",
                actor=actor,
                obj=locked,
                channel=channel,
                address=address,
                detail={"user_id": locked.user_id, "kind": locked.kind},
            )
    forget_resolved_addresses()
    addr.refresh_from_db()
    return addr


def rotate_capture_address(
    addr: CaptureAddress, actor: object, *, channel: str = "", address: str = ""
) -> CaptureAddress:
    """Revoke `addr` and issue a new token for the same owner, kind and label."""
    with transaction.atomic():
        locked = CaptureAddress.objects.select_for_update().get(pk=addr.pk)
        if locked.active:
            locked.active = False
            locked.revoked_at = timezone.now()
            locked.save(update_fields=["active", "revoked_at", "updated"])
        new = CaptureAddress.objects.create(
            user_id=locked.user_id, kind=locked.kind, label=locked.label
        )
        # The tokens are secrets: the audit log names the rows, never the addresses.
        record_event(
            "capture_address.rotate",
            actor=actor,
            obj=new,
            channel=channel,
            address=address,
            detail={"user_id": locked.user_id, "old_id": locked.pk, "new_id": new.pk},
        )
    forget_resolved_addresses()
    addr.refresh_from_db()
    return new


def parse_capture_token(rcpt: str) -> str | None:
    """The token of `log+<token>@<capture domain>`, or None when rcpt is not one of ours."""
    try:
        address = normalize_address(rcpt)
        domain = normalize_address(f"x@{settings.MAILWARDEN_CAPTURE_DOMAIN}").partition("@")[2]
    except InvalidAddress:
        return None
    local, _, rcpt_domain = address.partition("@")
    if rcpt_domain != domain or not local.startswith(LOCAL_PREFIX):
        return None
    token = local[len(LOCAL_PREFIX) :]
    if not token or len(token) > 64:
        return None
    return token


def resolve_capture_address(rcpt: str) -> CaptureAddress | None:
    """The active capture address `rcpt` names (owner active), else None."""
    token = parse_capture_token(rcpt)
    if token is None:
        return None
    return (
        CaptureAddress.objects.select_related("user")
        .filter(token=token, active=True, user__is_active=True)
        .first()
    )


class NotCached(Exception):
    """resolve_capture_target(cached_only=True) would have to ask the database."""


def resolve_capture_target(rcpt: str, *, cached_only: bool = False) -> ResolvedAddress | None:
    """`resolve_capture_address` plus the owner's sender list, cached briefly (SMTP hot path).

    With cached_only, raise NotCached instead of querying (the listener's event loop calls
    it that way and falls back to a thread).
    """
    token = parse_capture_token(rcpt)
    if token is None:
        return None
    now = time.monotonic()
    hit = _resolve_cache.get(token)
    if hit is not None and now - hit[0] < RESOLVE_CACHE_SECONDS:
        return hit[1]
    if cached_only:
        raise NotCached(token)
    addr = (
        CaptureAddress.objects.select_related("user")
        .filter(token=token, active=True, user__is_active=True)
        .first()
    )
    resolved = (
        None
        if addr is None
        else ResolvedAddress(addr.pk, addr.user_id, addr.kind, allowed_senders(addr))
    )
    with _resolve_lock:
        if len(_resolve_cache) >= _RESOLVE_CACHE_MAX:
            _resolve_cache.clear()
        _resolve_cache[token] = (now, resolved)
    return resolved


def _normalised(addresses: Iterable[str]) -> list[str] | None:
    out = []
    for a in addresses:
        try:
            out.append(normalize_address(a))
        except InvalidAddress:
            return None
    return out


def sender_allowed(user: User, addresses: list[str]) -> bool:
    """True when every address is one of `user`'s own (login e-mail, connected, alias)."""
    wanted = _normalised(addresses)
    if not wanted:
        return False
    own = user.own_addresses()
    return all(a in own for a in wanted)


def team_sender_allowed(addresses: list[str]) -> bool:
    """True when every address belongs to some active user (the rule for shared addresses)."""
    wanted = _normalised(addresses)
    if not wanted:
        return False
    known = set(
        UserAddress.objects.verified()
        .filter(address__in=wanted, user__is_active=True)
        .values_list("address", flat=True)
    )
    for a in set(wanted) - known:
        if not User.objects.filter(email__iexact=a, is_active=True).exists():
            return False
    return True


def allowed_senders(addr: CaptureAddress) -> frozenset[str] | None:
    """The addresses that may send to `addr`, or None for a shared address (any team member)."""
    if addr.kind == CaptureAddress.Kind.SHARED:
        return None
    return frozenset(addr.user.own_addresses())
