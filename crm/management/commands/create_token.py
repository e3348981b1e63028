"""`manage.py create_token USERNAME --scopes crm:read,crm:write [--service NAME]`.

Prints the new token's secret as the last line (it is stored only as a hash).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from crm.models import ApiToken, User
from crm.services import InvalidScopes, issue_api_token, record_crm_change


class Command(BaseCommand):
    help = "Create an API token for a user (or a service token acting as that user); prints the secret last."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username", help="The user the token acts as.")
        parser.add_argument(
            "--scopes",
            required=True,
            help=f"Comma-separated scopes: {', '.join(ApiToken.Scope.values)}.",
        )
        parser.add_argument(
            "--service", default="", help="Make a service token with this service name."
        )
        parser.add_argument(
            "--name", default="", help="A label for the token (default: the service or user)."
        )

    def handle(self, *args, **options) -> None:
        try:
            user = User.objects.get(username=options["username"])
        except User.DoesNotExist as e:
            raise CommandError(f"No user named {options['username']!r}.") from e
        try:
            token, secret = issue_api_token(
                user=user,
                scopes=options["scopes"].split(","),
                name=options["name"],
                service=options["service"],
            )
        except InvalidScopes as e:
            raise CommandError(str(e)) from e
        record_crm_change("created", token, actor="manage.py create_token", channel="cli")
        kind = f"service token for {token.service}" if token.service else "token"
        self.stdout.write(
            f"Created {kind} {token.prefix}… for {user.get_username()} with scopes {', '.join(token.scopes)}."
        )
        self.stdout.write("The secret is shown only now:")
        self.stdout.write(secret)
