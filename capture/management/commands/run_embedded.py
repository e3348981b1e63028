"""`manage.py run_embedded`: the embedded mode's one process (`make run`).

Starts the in-process processing worker (no broker), the SMTP listener in a thread, a
periodic thread (sweeper, audit sealer, due IMAP syncs), prints each user's capture address
with a command to send a test mail, then runs the web server on 127.0.0.1:8000.
"""

from __future__ import annotations

import logging
import shlex
import threading
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from capture import dispatch
from capture.addresses import get_or_create_capture_address
from core.dispatch import run_local
from core.schedules import declared_schedules
from crm.models import User

log = logging.getLogger(__name__)

TICK_SECONDS = 5


def run_periodic(stop: threading.Event, tick: float = TICK_SECONDS) -> None:
    """What beat does in production, in a thread: every app's declared schedules
    (core/schedules.py), each run in-process at its interval (core/dispatch.py)."""
    schedules = declared_schedules()
    last = dict.fromkeys((spec.name for spec in schedules), time.monotonic())
    while not stop.wait(tick):
        now = time.monotonic()
        for spec in schedules:
            if now - last[spec.name] < spec.every_seconds:
                continue
            last[spec.name] = now
            close_old_connections()
            try:
                run_local(spec.task)
            except Exception:  # the boundary: a failing job must not stop the others
                log.exception("periodic task %s failed", spec.task)
        close_old_connections()


def test_commands(address: str, sender: str, host: str, port: int) -> tuple[str, str]:
    """A swaks command and a python -c smtplib alternative that send a test mail to `address`."""
    swaks = (
        f"swaks --server {host}:{port} --from {sender} --to {address} "
        f'--header "From: {sender}" --header "Subject: hello"'
    )
    code = (
        "import smtplib;from email.message import EmailMessage as M;m=M();"
        f"m['From']={sender!r};m['To']='bob@example.com';m['Subject']='hello';"
        "m.set_content('Hi from Mailwarden.');"
        f"s=smtplib.SMTP({host!r},{port});s.send_message(m,to_addrs=[{address!r}]);s.quit()"
    )
    return swaks, f"python -c {shlex.quote(code)}"


class Command(BaseCommand):
    help = "Run everything of the embedded mode in one process: web, SMTP listener, worker, periodic jobs."

    def add_arguments(self, parser):
        parser.add_argument("--addrport", default="127.0.0.1:8000", help="web server address")
        parser.add_argument("--smtp-host", default=settings.MAILWARDEN_SMTP_HOST)
        parser.add_argument("--smtp-port", type=int, default=settings.MAILWARDEN_SMTP_PORT)
        parser.add_argument(
            "--no-web", action="store_true", help="skip runserver (wait for Ctrl-C)"
        )

    def handle(self, *args, **options):
        from capture.smtp.server import start_listener_thread

        broker = bool(settings.CELERY_BROKER_URL)
        if broker:
            self.stdout.write(
                "CELERY_BROKER_URL is set: run the worker and the schedule separately:\n"
                "    celery -A config worker -B --loglevel=info"
            )
        else:
            dispatch.start_local_processing()
        listener = start_listener_thread(host=options["smtp_host"], port=options["smtp_port"])
        stop = threading.Event()
        if not broker:
            threading.Thread(
                target=run_periodic, args=(stop,), name="mailwarden-periodic", daemon=True
            ).start()
        self.print_addresses(options["smtp_host"], listener.port)
        try:
            if options["no_web"]:
                stop.wait()
            else:
                # --noreload: the autoreloader would start a second copy of our threads.
                call_command("runserver", options["addrport"], use_reloader=False)
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            listener.stop()

    def print_addresses(self, host: str, port: int) -> None:
        # The listener logs its own "SMTP capture listener on ..." line when it starts.
        self.stdout.write(f"Capture addresses (mail them through {host}:{port}):")
        users = User.objects.filter(is_active=True).exclude(email="").order_by("username")
        for user in users:
            addr = get_or_create_capture_address(user, actor="run_embedded")
            swaks, python = test_commands(addr.address, user.email, host, port)
            self.stdout.write(f"\n{user.get_username()}: {addr.address}")
            self.stdout.write(f"  {swaks}")
            self.stdout.write(f"  {python}")
        self.stdout.write("")
