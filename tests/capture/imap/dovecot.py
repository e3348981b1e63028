"""A throwaway Dovecot on a loopback port (NOTES-infra.md): used by the IMAP tests'
fixtures (conftest.py) and by bench/imap_sync.py. No pytest here."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path

from imapclient import IMAPClient

PASSWORD = "secret"
_seq = itertools.count(1)

DOVECOT_CONF = """\
instance_name = dovecot-test-{port}
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_login_user = dovenull
default_internal_user = dovecot
default_internal_group = dovecot
first_valid_uid = 65534
first_valid_gid = 65534
mail_uid = 65534
mail_gid = 65534
mail_location = maildir:{dir}/mail/%u
mail_fsync = never
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = home={dir}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Drafts {{
    special_use = \\Drafts
  }}
  mailbox Junk {{
    special_use = \\Junk
  }}
  mailbox Trash {{
    special_use = \\Trash
  }}
  mailbox "Sent Mail" {{
    special_use = \\Sent
  }}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
# No auth penalty: after the auth-failure tests every login from 127.0.0.1 would wait ~4 s.
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def make_message(
    n: int | None = None,
    *,
    message_id: str | None = None,
    subject: str | None = None,
    size: int = 2000,
    date: datetime | None = None,
) -> bytes:
    """A plain-text message with CRLF line endings and (by default) a unique Message-ID."""
    n = next(_seq) if n is None else n
    message_id = message_id or f"<imap-test-{n}-{time.time_ns()}@example.com>"
    date = date or datetime.now().astimezone()
    line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n"
    body = line * max(1, size // len(line))
    return (
        f"From: Customer {n} <customer{n}@example.com>\r\n"
        f"To: Seller <seller@mailwarden-demo.com>\r\n"
        f"Subject: {subject or f'Order {n}'}\r\n"
        f"Date: {format_datetime(date)}\r\n"
        f"Message-ID: {message_id}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"{body}"
    ).encode()


@dataclass
class Dovecot:
    host: str
    port: int
    dir: Path
    process: subprocess.Popen = field(repr=False)

    def new_user(self) -> str:
        return f"user{next(_seq)}-{os.getpid()}"

    def client(self, user: str) -> IMAPClient:
        c = IMAPClient(self.host, port=self.port, ssl=False, timeout=30)
        c.login(user, PASSWORD)
        return c

    def append(
        self,
        user: str,
        folder: str,
        messages: Iterable[bytes],
        *,
        flags: tuple[bytes, ...] = (),
        msg_time: datetime | None = None,
        chunk: int = 500,
    ) -> None:
        """MULTIAPPEND messages (creating the folder when missing)."""
        with self.client(user) as c:
            if folder.upper() != "INBOX" and not c.folder_exists(folder):
                c.create_folder(folder)
            batch: list[dict] = []
            for data in messages:
                item: dict = {"msg": data, "flags": flags}
                if msg_time is not None:
                    item["date"] = msg_time
                batch.append(item)
                if len(batch) >= chunk:
                    c.multiappend(folder, batch)
                    batch = []
            if batch:
                c.multiappend(folder, batch)

    def uidvalidity(self, user: str, folder: str) -> int:
        with self.client(user) as c:
            return int(c.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"])

    def flags(self, user: str, folder: str) -> dict[int, tuple[bytes, ...]]:
        with self.client(user) as c:
            c.select_folder(folder, readonly=True)
            uids = c.search("ALL")
            return (
                {uid: item[b"FLAGS"] for uid, item in c.fetch(uids, ["FLAGS"]).items()}
                if uids
                else {}
            )

    def recreate_folder(self, user: str, folder: str) -> None:
        """Delete and recreate a folder with the same messages: a new UIDVALIDITY, new UIDs."""
        with self.client(user) as c:
            c.select_folder(folder, readonly=True)
            uids = c.search("ALL")
            items = c.fetch(uids, ["BODY.PEEK[]", "INTERNALDATE"]) if uids else {}
            c.unselect_folder()
            c.delete_folder(folder)
            c.create_folder(folder)
            ordered = [items[uid] for uid in sorted(items)]
            if ordered:
                c.multiappend(
                    folder, [{"msg": i[b"BODY[]"], "date": i[b"INTERNALDATE"]} for i in ordered]
                )


def start_dovecot(binary: str) -> Dovecot | None:
    """Start an instance in a fresh temp dir; None when it does not come up."""
    # Not under pytest's 0700 temp root: the mail uid (nobody) must reach the mail dir.
    root = Path(tempfile.mkdtemp(prefix="mw-dovecot-"))
    root.chmod(0o755)
    for sub in ("run", "state", "mail"):
        (root / sub).mkdir()
    if os.geteuid() == 0:
        shutil.chown(root / "mail", user="nobody")
    for _attempt in range(3):
        port = free_port()
        conf = root / "dovecot.conf"
        conf.write_text(DOVECOT_CONF.format(dir=root, port=port, password=PASSWORD))
        process = subprocess.Popen(
            [binary, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if wait_for_port(port):
            return Dovecot("127.0.0.1", port, root, process)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    shutil.rmtree(root, ignore_errors=True)
    return None


def stop_dovecot(instance: Dovecot) -> None:
    instance.process.send_signal(signal.SIGTERM)
    try:
        instance.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        instance.process.kill()
    shutil.rmtree(instance.dir, ignore_errors=True)


def find_dovecot() -> str | None:
    return shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot",) if os.path.exists(p)), None
    )
