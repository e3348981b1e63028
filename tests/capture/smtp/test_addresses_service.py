"""Capture addresses: creation, rotation, revocation, resolution and the sender rule."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from capture.addresses import (
    create_shared_capture_address,
    get_or_create_capture_address,
    resolve_capture_address,
    revoke_capture_address,
    rotate_capture_address,
    sender_allowed,
)
from capture.models import CaptureAddress
from governance.models import AuditEvent
from tests.factories import make_user, make_user_address

pytestmark = pytest.mark.django_db


def test_a_users_address_is_log_plus_an_unguessable_token_at_the_capture_domain(settings):
    settings.MAILWARDEN_CAPTURE_DOMAIN = "capture.example.com"
    user = make_user()
    addr = get_or_create_capture_address(user)
    local, domain = addr.address.split("@")
    assert domain == "capture.example.com"
    assert local.startswith("log+") and len(local) >= 4 + 24
    assert get_or_create_capture_address(user).pk == addr.pk
    assert get_or_create_capture_address(make_user()).token != addr.token


def test_resolution_is_case_insensitive_in_the_domain_and_refuses_other_domains():
    addr = get_or_create_capture_address(make_user())
    assert resolve_capture_address(addr.address.upper().replace("LOG+", "log+")) == addr
    assert resolve_capture_address(f"<{addr.address}>") == addr
    assert resolve_capture_address(addr.address.replace("capture.localhost", "example.com")) is None
    assert resolve_capture_address(f"other+{addr.token}@capture.localhost") is None
    assert resolve_capture_address("not an address") is None


def test_rotation_revokes_the_old_token_issues_a_new_one_and_is_audited():
    user = make_user()
    old = get_or_create_capture_address(user)
    new = rotate_capture_address(old, user)
    old.refresh_from_db()
    assert not old.active and old.revoked_at is not None
    assert new.active and new.token != old.token and new.user == user
    assert resolve_capture_address(old.address) is None
    assert resolve_capture_address(new.address) == new
    event = AuditEvent.objects.get(action="capture_address.rotate")
    assert event.actor_user_id == user.pk
    assert event.detail == {"user_id": user.pk, "old_id": old.pk, "new_id": new.pk}
    assert old.token not in str(event.detail) and new.token not in str(event.detail)


def test_revocation_is_audited_once():
    user = make_user()
    addr = get_or_create_capture_address(user)
    revoke_capture_address(addr, user)
    revoke_capture_address(addr, user)
    assert resolve_capture_address(addr.address) is None
    assert AuditEvent.objects.filter(action="capture_address.revoke").count() == 1


def test_an_inactive_users_address_does_not_resolve():
    user = make_user()
    addr = get_or_create_capture_address(user)
    user.is_active = False
    user.save()
    assert resolve_capture_address(addr.address) is None


def test_a_shared_address_belongs_to_its_named_owner():
    owner = make_user()
    shared = create_shared_capture_address(owner, "support@ inbox")
    assert (shared.kind, shared.user, shared.label) == (
        CaptureAddress.Kind.SHARED,
        owner,
        "support@ inbox",
    )
    assert get_or_create_capture_address(owner).pk != shared.pk


def test_the_sender_rule_accepts_login_connected_and_alias_addresses_only():
    user = make_user(email="Ann@Mailwarden-Demo.com")
    make_user_address(user, "ann@brand.example", kind="connected")
    make_user_address(user, "sales-ann@brand.example", kind="alias")
    assert sender_allowed(user, ["ann@mailwarden-demo.com"])
    assert sender_allowed(user, ["ANN@brand.example", "Sales-Ann@brand.example"])
    assert not sender_allowed(user, ["ann@mailwarden-demo.com", "eve@example.com"])
    assert not sender_allowed(user, [])
    assert not sender_allowed(user, ["not an address"])


def test_the_capture_address_command_prints_rotates_and_revokes(capsys):
    user = make_user(username="carol")
    call_command("capture_address", "carol")
    first = capsys.readouterr().out.strip()
    assert first == get_or_create_capture_address(user).address
    call_command("capture_address", "carol", "--rotate")
    second = capsys.readouterr().out.strip()
    assert second != first and resolve_capture_address(first) is None
    assert resolve_capture_address(second) is not None
    call_command("capture_address", "carol", "--revoke")
    assert resolve_capture_address(second) is None
    actions = AuditEvent.objects.filter(action__startswith="capture_address.").order_by("id")
    assert [e.action for e in actions] == [
        "capture_address.create",
        "capture_address.rotate",
        "capture_address.revoke",
    ]
