from __future__ import annotations

import io
import stat

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from crm.models import ApiToken, User
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def run(*args, **kwargs) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, **kwargs)
    return out.getvalue()


def test_create_token_prints_a_working_secret_as_its_last_line():
    make_user(username="sync")
    output = run("create_token", "sync", "--scopes", "crm:read,capture:write")
    secret = output.strip().splitlines()[-1]
    token = ApiToken.objects.get()
    assert token.key_hash == ApiToken.hash_key(secret)
    assert token.scopes == ["capture:write", "crm:read"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/contacts/").status_code == 200


def test_create_token_makes_a_service_token():
    make_user(username="svc")
    run("create_token", "svc", "--scopes", "crm:write", "--service", "hubspot-bridge")
    assert ApiToken.objects.get().service == "hubspot-bridge"


def test_create_token_refuses_unknown_scopes_and_users():
    make_user(username="sync")
    with pytest.raises(CommandError, match="Unknown scope"):
        run("create_token", "sync", "--scopes", "crm:read,crm:everything")
    with pytest.raises(CommandError, match="No user"):
        run("create_token", "ghost", "--scopes", "crm:read")
    assert not ApiToken.objects.exists()


def test_ensure_admin_creates_the_superuser_once_and_reuses_its_stored_password(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    first = run("ensure_admin")
    line = first.strip().splitlines()[-1]
    assert line.startswith("Admin login: http://127.0.0.1:8000/admin/  user: admin  password: ")
    password = line.rsplit(" ", 1)[1]
    stored = tmp_path / "admin-password.txt"
    assert stored.read_text().strip() == password
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff and admin.role == "admin"
    assert admin.check_password(password)

    second = run("ensure_admin")
    assert second.strip().splitlines()[-1].endswith(password)
    assert User.objects.filter(username="admin").count() == 1


def test_ensure_admin_resets_a_changed_password_to_the_stored_one(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    password = run("ensure_admin").strip().rsplit(" ", 1)[1]
    admin = User.objects.get(username="admin")
    admin.set_password("something-else")
    admin.save()
    run("ensure_admin")
    admin.refresh_from_db()
    assert admin.check_password(password)
