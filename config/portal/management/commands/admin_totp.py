"""`manage.py admin_totp USERNAME`: give a staff user a TOTP device for the admin's two-factor
login and print its secret and otpauth:// URI (enter either in an authenticator app).

Idempotent: an existing device named "default" is kept and printed again. `--reset` replaces
it with a new secret. The device is also manageable in the admin (OTP → TOTP devices).
"""

from __future__ import annotations

import base64

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django_otp.plugins.otp_totp.models import TOTPDevice

from governance.audit import record_event

DEVICE_NAME = "default"


class Command(BaseCommand):
    help = "Create (or show) a user's TOTP device for the admin's two-factor login."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--reset", action="store_true", help="Replace the secret.")

    def handle(self, *args, username: str, reset: bool, **options) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if reset:
            TOTPDevice.objects.filter(user=user, name=DEVICE_NAME).delete()
        device, created = TOTPDevice.objects.get_or_create(
            user=user, name=DEVICE_NAME, defaults={"confirmed": True}
        )
        if created or reset:
            record_event(
                "auth.totp_device_created",
                actor="manage.py admin_totp",
                obj=user,
                channel="cli",
                detail={"device": device.pk, "reset": reset},
            )
        secret = base64.b32encode(device.bin_key).decode().rstrip("=")
        self.stdout.write(f"TOTP secret for {username}: {secret}")
        self.stdout.write(f"URI: {device.config_url}")
