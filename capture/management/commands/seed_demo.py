"""Demo data for a first `make run`: the CRM, the internal domain, capture addresses and a few
hundred captured messages fed through the real pipeline. Re-running is safe and quick."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from capture.demo import INTERNAL_DOMAIN, feed_demo_mail, seed_demo_policy
from capture.retention import recompute_new_messages
from core.progress import progress_reporter
from crm.demo import seed_crm
from governance.models import OrgSettings


class Command(BaseCommand):
    help = "Seed demo CRM records and captured demo mail (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--organizations", type=int, default=300)
        parser.add_argument("--messages", type=int, default=300)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument(
            "--no-progress",
            action="store_true",
            help="No progress output (a bar on a terminal, log lines otherwise).",
        )

    def handle(self, *args, organizations: int, messages: int, seed: int, **options) -> None:
        bar = progress_reporter(
            total=None,
            desc="demo mail",
            unit="msg",
            stream=self.stderr,
            enabled=not options.get("no_progress"),
        )
        crm = seed_crm(organizations=organizations, seed=seed)
        settings = OrgSettings.load()
        if not settings.internal_domains:
            settings.internal_domains = [INTERNAL_DOMAIN]
            settings.save(update_fields=["internal_domains", "updated"])
        addresses = ensure_capture_addresses(list(crm.users.values()))
        policy = seed_demo_policy()
        with bar:
            mail = feed_demo_mail(
                messages=messages, seed=seed, progress=bar.update, set_total=bar.reset
            )
        recompute_new_messages()  # the demo mail's expiry, at once (docs/retention.md)
        self.stdout.write(
            f"CRM: {crm.organizations} organizations, {crm.contacts} contacts, {crm.items} items "
            f"({crm.created_organizations} organizations created now)"
        )
        if addresses:
            self.stdout.write(f"Capture addresses: {', '.join(addresses)}")
        self.stdout.write(
            f"Policy: {policy['categories']} categories and {policy['link_rules']} link rules "
            "created now"
        )
        counts = ", ".join(
            f"{v} {k}" for k, v in mail.items() if k not in ("stored", "processed_now")
        )
        self.stdout.write(
            f"Demo mail: {mail['stored']} stored now, {mail['processed_now']} processed now; "
            f"in total {counts or 'none'}"
        )


def ensure_capture_addresses(users: list) -> list[str]:
    """Each demo user's personal capture address (when the SMTP channel is installed)."""
    try:
        from capture.addresses import get_or_create_capture_address
    except ImportError:
        return []
    out = []
    for user in users:
        addr = get_or_create_capture_address(user)
        out.append(f"{user.username}: {addr.address}")
    return out
