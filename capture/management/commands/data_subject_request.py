"""`manage.py data_subject_request {access,erasure,objection} ADDRESS --user USERNAME`: the
whole data-subject flow from a shell (docs/governance.md "Data-subject requests"). Runs the
request in this process with a progress bar on a terminal, prints its counts and what a legal
hold retained; an access request also writes its archive (`--out`) and prints its password."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from capture import dsr
from crm.models import User


class Command(BaseCommand):
    help = "Carry out a data-subject request (access, erasure or objection) for one address."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=["access", "erasure", "objection"])
        parser.add_argument("address")
        parser.add_argument("--user", required=True, help="The compliance officer asking.")
        parser.add_argument("--note", default="")
        parser.add_argument("--out", help="access: where to write the archive (.zip).")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts) -> None:
        user = User.objects.filter(username=opts["user"]).first()
        if user is None or not user.is_compliance:
            raise CommandError("--user must name a compliance officer or an admin.")
        if opts["kind"] == "access" and not opts["out"]:
            raise CommandError("An access request needs --out FILE.zip.")
        try:
            # queued too (the task is idempotent), but done here and now
            req, password = dsr.create_request(
                opts["kind"], opts["address"], requested_by=user, note=opts["note"], channel="cli"
            )
        except dsr.DsrRejected as e:
            raise CommandError(str(e)) from None
        show = not opts["no_progress"] and sys.stderr.isatty()
        bar = tqdm(total=100, unit="%", disable=not show, file=sys.stderr)

        def progress(pct: int) -> None:
            if show:
                bar.update(max(0, pct - bar.n))
            else:
                self.stderr.write(f"request {req.pk}: {pct}%")

        req = dsr.run_request(req.pk, progress=progress)
        bar.close()
        self.stdout.write(f"request {req.pk} ({req.kind}): {req.state}")
        self.stdout.write(json.dumps({"counts": req.counts, "retained": req.retained}, indent=2))
        if req.kind == "access":
            Path(opts["out"]).write_bytes(dsr.take_archive(req, user, channel="cli"))
            self.stdout.write(f"archive: {opts['out']}  password: {password}")
