"""`manage.py capture_address USERNAME [--rotate | --revoke]`: print (or change) a user's address."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from capture.addresses import (
    get_or_create_capture_address,
    revoke_capture_address,
    rotate_capture_address,
)
from crm.models import User


class Command(BaseCommand):
    help = "Print USERNAME's capture address; --rotate issues a new one, --revoke disables it."

    def add_arguments(self, parser):
        parser.add_argument("username")
        group = parser.add_mutually_exclusive_group()
        group.add_argument(
            "--rotate", action="store_true", help="revoke the address and print a new one"
        )
        group.add_argument(
            "--revoke", action="store_true", help="revoke the address (mail to it gets 550)"
        )

    def handle(self, *args, **options):
        try:
            user = User.objects.get(username=options["username"])
        except User.DoesNotExist as e:
            raise CommandError(f"No user named {options['username']!r}.") from e
        actor = "manage.py capture_address"
        addr = get_or_create_capture_address(user, actor=actor)
        if options["rotate"]:
            addr = rotate_capture_address(addr, actor)
        elif options["revoke"]:
            revoke_capture_address(addr, actor)
            self.stdout.write(f"revoked {addr.address}")
            return
        self.stdout.write(addr.address)
