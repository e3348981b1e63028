"""https receivers: the connection goes to the address checked, yet TLS sends the URL's name
as SNI and checks the certificate against that name (not against the IP connected to)."""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from governance.audit import record_event
from governance.models import WebhookDelivery
from governance.outbound.delivery import deliver_subscription
from tests.governance.webhooks.conftest import subscribe, verify_signature

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_private")]


def make_ca_and_cert(tmp_path, name: str):
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(pem))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return tmp_path / "ca.pem"


@pytest.fixture
def tls_receiver(tmp_path):
    ca_file = make_ca_and_cert(tmp_path, "localhost")
    received: list[tuple[dict, bytes]] = []
    sni: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    context.sni_callback = lambda sock, name, ctx: sni.append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], ca_file, received, sni
    server.shutdown()
    server.server_close()


def test_https_to_a_name_is_verified_against_that_name_with_sni(tls_receiver, settings):
    port, ca_file, received, sni = tls_receiver
    settings.MAILWARDEN_WEBHOOKS_CA_FILE = str(ca_file)
    sub, secret = subscribe(f"https://localhost:{port}/hook", "contact.created")
    record_event("crm.contact.created", object_type="crm.contact", object_id=1)
    assert deliver_subscription(sub.pk) == 1
    headers, body = received[0]
    assert sni == ["localhost"]
    assert headers["host"] == f"localhost:{port}"
    assert verify_signature(secret, headers, body)
    assert WebhookDelivery.objects.get().attempt_log.get().destination in ("127.0.0.1", "::1")


def test_a_certificate_for_another_name_is_refused(tls_receiver, settings):
    port, ca_file, received, _ = tls_receiver
    settings.MAILWARDEN_WEBHOOKS_CA_FILE = str(ca_file)
    sub, _ = subscribe(f"https://127.0.0.1:{port}/hook", "contact.created")  # cert: localhost
    record_event("crm.contact.created", object_type="crm.contact", object_id=1)
    assert deliver_subscription(sub.pk) == 0
    assert received == []
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert "SSLError" in delivery.last_error or "certificate" in delivery.last_error


def test_an_unknown_ca_is_refused(tls_receiver):
    port, _, received, _ = tls_receiver
    sub, _ = subscribe(f"https://localhost:{port}/hook", "contact.created")
    record_event("crm.contact.created", object_type="crm.contact", object_id=1)
    assert deliver_subscription(sub.pk) == 0
    assert received == []
    assert "SSLError" in WebhookDelivery.objects.get().last_error
