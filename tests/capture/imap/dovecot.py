"""A throwaway Dovecot on a loopback port (docs/imap.md, "Tests and benchmark"): used by the IMAP tests'
fixtures (conftest.py) and by bench/imap_sync.py. No pytest here."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
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
{ssl}
disable_plaintext_auth = no
auth_mechanisms = {auth_mechanisms}
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
{passdbs}userdb {{
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
{imaps}
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


PLAIN_PASSDB = """\
passdb {{
  driver = static
  args = password={password}
}}
"""

# TLS: STARTTLS on the plain port, implicit TLS on the imaps port (Dovecot 2.3 syntax: "<path"
# reads the file). No ssl_dh: the default ciphers are ECDHE, so no DH parameters are needed.
TLS_SSL = """\
ssl = yes
ssl_cert = <{dir}/tls/server.pem
ssl_key = <{dir}/tls/server.key
ssl_min_protocol = TLSv1.2"""

TLS_IMAPS = """\
    address = {addresses}
    port = {port}
    ssl = yes"""

# XOAUTH2/OAUTHBEARER go to the oauth2 passdb only (the static one would otherwise accept the
# password as a "token"); PLAIN/LOGIN (the fixtures' own seeding logins) to the static one.
OAUTH2_PASSDBS = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {dir}/oauth2.conf.ext
}}
passdb {{
  driver = static
  mechanisms = plain login
  args = password={password}
}}
"""

# Local validation of HS256 JWT access tokens (Dovecot >= 2.3.11): no token server. The key
# is looked up as shared/<azp>/<alg>/<kid> ("default" when the token has no azp/kid claim);
# the token's "sub" must be the login name.
OAUTH2_CONF = """\
introspection_mode = local
local_validation_key_dict = fs:posix:prefix={dir}/oauth2-keys/
username_attribute = sub
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
class TestPKI:
    ca_file: Path  # the throwaway CA's certificate (PEM): what MAILWARDEN_IMAP_CA_FILE points at
    cert_file: Path  # the server certificate (PEM), for "localhost" and 127.0.0.1, signed by the CA
    key_file: Path


def _key_usage(*allowed: str) -> x509.KeyUsage:
    names = (
        "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
        "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
    )  # fmt: skip
    return x509.KeyUsage(**{name: name in allowed for name in names})


def write_test_pki(directory: Path) -> TestPKI:
    """A throwaway CA and a server certificate for localhost/127.0.0.1 signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Mailwarden test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage("key_cert_sign", "crl_sign"), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage("digital_signature"), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = TestPKI(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    pki.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pki


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_access_token(user: str, key: bytes, *, lifetime: timedelta = timedelta(hours=1)) -> str:
    """An HS256 JWT access token for `user` (claim "sub"), signed with `key`."""
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"sub": user, "iat": now, "nbf": now, "exp": now + int(lifetime.total_seconds())}
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


def _loopback_alias() -> str | None:
    """127.0.0.2 when it can be bound (all of 127/8 is loopback on Linux), else None."""
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.2", 0))
        return "127.0.0.2"
    except OSError:
        return None


@dataclass
class Dovecot:
    host: str
    port: int
    dir: Path
    process: subprocess.Popen = field(repr=False)
    # With tls=True: implicit TLS on tls_port, STARTTLS on `port`, certificate signed by pki.
    tls_port: int | None = None
    pki: TestPKI | None = None
    # Another loopback address the imaps port also answers on; the certificate does not name
    # it (hostname-check test). None when it cannot be bound.
    alt_host: str | None = None
    # With oauth2=True: XOAUTH2/OAUTHBEARER accept JWTs signed with this key (access_token()).
    oauth2_key: bytes | None = field(default=None, repr=False)

    def access_token(self, user: str, **kwargs) -> str:
        """A valid OAuth2 access token for `user` on this instance (oauth2=True)."""
        assert self.oauth2_key is not None, "start_dovecot(..., oauth2=True)"
        return make_access_token(user, self.oauth2_key, **kwargs)

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


def start_dovecot(binary: str, *, tls: bool = False, oauth2: bool = False) -> Dovecot | None:
    """Start an instance in a fresh temp dir; None when it does not come up.

    tls: a throwaway CA and server certificate (Dovecot.pki), implicit TLS on a second port
    (Dovecot.tls_port) and STARTTLS on the plain one. oauth2: XOAUTH2 and OAUTHBEARER with
    tokens from Dovecot.access_token(); PLAIN/LOGIN keep the static password either way.
    """
    # Not under pytest's 0700 temp root: the mail uid (nobody) must reach the mail dir.
    root = Path(tempfile.mkdtemp(prefix="mw-dovecot-"))
    root.chmod(0o755)
    for sub in ("run", "state", "mail"):
        (root / sub).mkdir()
    if os.geteuid() == 0:
        shutil.chown(root / "mail", user="nobody")
    pki = write_test_pki(root / "tls") if tls else None
    alt_host = _loopback_alias() if tls else None
    oauth2_key = os.urandom(32) if oauth2 else None
    if oauth2_key is not None:
        key_path = root / "oauth2-keys" / "default" / "HS256" / "default"
        key_path.parent.mkdir(parents=True)
        key_path.write_bytes(base64.b64encode(oauth2_key))
        (root / "oauth2.conf.ext").write_text(OAUTH2_CONF.format(dir=root))
    for _attempt in range(3):
        port = free_port()
        tls_port = free_port() if tls else None
        conf = root / "dovecot.conf"
        conf.write_text(
            DOVECOT_CONF.format(
                dir=root,
                port=port,
                ssl=TLS_SSL.format(dir=root) if tls else "ssl = no",
                auth_mechanisms="plain login" + (" xoauth2 oauthbearer" if oauth2 else ""),
                passdbs=(OAUTH2_PASSDBS if oauth2 else PLAIN_PASSDB).format(
                    dir=root, password=PASSWORD
                ),
                imaps=TLS_IMAPS.format(
                    addresses=", ".join(a for a in ("127.0.0.1", alt_host) if a), port=tls_port
                )
                if tls
                else "    port = 0",
            )
        )
        process = subprocess.Popen(
            [binary, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if wait_for_port(port) and (tls_port is None or wait_for_port(tls_port)):
            return Dovecot(
                "127.0.0.1", port, root, process,
                tls_port=tls_port, pki=pki, alt_host=alt_host, oauth2_key=oauth2_key,
            )  # fmt: skip
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
