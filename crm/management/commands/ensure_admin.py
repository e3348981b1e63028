"""`manage.py ensure_admin`: make sure the demo superuser `admin` exists and print its login.

The password is generated once and kept in var/admin-password.txt (mode 0600), so every run
can print the same login; delete the file (or the user) to start over.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from crm.models import User

LOGIN_URL = "http://127.0.0.1:8000/admin/"


def password_file() -> Path:
    return Path(settings.VAR_DIR) / "admin-password.txt"


def read_or_create_password(path: Path) -> tuple[str, bool]:
    """The stored password, or a new one written with mode 0600; (password, created)."""
    if path.exists():
        text = path.read_text().strip()
        if text:
            return text, False
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password + "\n")
    os.chmod(path, 0o600)
    return password, True


class Command(BaseCommand):
    help = "Create (or keep) the superuser 'admin' with a password kept in var/admin-password.txt; print the login."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args, **options) -> None:
        username = options["username"]
        path = password_file()
        password, new_password = read_or_create_password(path)
        with transaction.atomic():
            user = User.objects.select_for_update().filter(username=username).first()
            created = user is None
            if created:
                user = User(username=username, email=f"{username}@localhost")
            changed = created or new_password or not user.check_password(password)
            user.is_staff = True
            user.is_superuser = True
            user.is_active = True
            user.role = User.Role.ADMIN
            if changed:
                user.set_password(password)
            user.save()
        if created:
            self.stdout.write(f"Created the superuser {username}.")
        elif changed:
            self.stdout.write(f"Reset {username}'s password to the one in {path}.")
        self.stdout.write(f"Admin login: {LOGIN_URL}  user: {username}  password: {password}")
