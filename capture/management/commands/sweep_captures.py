from __future__ import annotations

from django.core.management.base import BaseCommand

from capture.operations import sweep_pending


class Command(BaseCommand):
    help = "Re-queue pending raw messages whose queue message may be lost, and failed ones due for a retry."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--older-than", type=int, default=None, help="Seconds (default from settings)."
        )

    def handle(self, *args, **options) -> None:
        n = sweep_pending(options["older_than"])
        self.stdout.write(f"{n} raw messages re-queued")
