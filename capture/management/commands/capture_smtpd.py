"""`manage.py capture_smtpd`: the SMTP capture listener (docs/smtp.md)."""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from capture import dispatch
from capture.smtp.server import CaptureListener, serve_forever


class Command(BaseCommand):
    help = "Run the SMTP listener that captures mail sent to log+<token>@<capture domain>."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.MAILWARDEN_SMTP_HOST)
        parser.add_argument("--port", type=int, default=settings.MAILWARDEN_SMTP_PORT)
        parser.add_argument(
            "--tls-cert",
            default=settings.MAILWARDEN_SMTP_TLS_CERT,
            help="PEM certificate for STARTTLS",
        )
        parser.add_argument(
            "--tls-key",
            default=settings.MAILWARDEN_SMTP_TLS_KEY,
            help="PEM key (default: in --tls-cert)",
        )
        parser.add_argument(
            "--no-process",
            action="store_true",
            help="only store raw mail; leave processing to the sweeper/worker",
        )

    def handle(self, *args, **options):
        process = not options["no_process"]
        if process and not settings.CELERY_BROKER_URL:
            # Embedded mode: process in a background thread, never in the writer thread.
            dispatch.start_local_processing()
        listener = CaptureListener(
            options["host"],
            options["port"],
            tls_cert=options["tls_cert"],
            tls_key=options["tls_key"],
            process=process,
        )

        def ready(lst: CaptureListener) -> None:
            tls = " with STARTTLS" if lst.tls_context else ""
            # Tests and scripts read this line to find the port (--port 0 picks a free one).
            self.stdout.write(f"capture_smtpd listening on {lst.host}:{lst.port}{tls}")
            sys.stdout.flush()

        serve_forever(listener, ready=ready)
        self.stdout.write("capture_smtpd stopped")
