"""Several recipients, pipelined transactions, big messages and STARTTLS, over real clients."""

from __future__ import annotations

import datetime
import smtplib
import socket
import ssl

import pytest

from capture.addresses import create_shared_capture_address, get_or_create_capture_address
from capture.models import RawMessage
from capture.storage import read_raw
from tests.capture.smtp.conftest import build_message
from tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)


def test_each_recipient_of_one_transaction_gets_its_own_capture(smtp, alice, alice_address):
    shared = create_shared_capture_address(alice, "sales@ inbox")
    second = get_or_create_capture_address(alice, kind="personal")
    assert second.pk == alice_address.pk  # get_or_create returns the existing one
    data = build_message(sender=alice.email, to="bob@example.com")
    assert smtp.sendmail(alice.email, [alice_address.address, shared.address], data) == {}
    rows = {r.capture_address_id: r for r in RawMessage.objects.all()}
    assert set(rows) == {alice_address.pk, shared.pk}
    assert rows[shared.pk].envelope_to == [shared.address]
    assert all(r.user_id == alice.pk for r in rows.values())


def test_a_shared_address_accepts_any_team_member_but_not_outsiders(smtp, alice):
    bob = make_user(username="bob", email="bob@mailwarden-demo.com")
    shared = create_shared_capture_address(alice, "support inbox")
    data = build_message(sender=bob.email, to="customer@example.com")
    assert smtp.sendmail(bob.email, [shared.address], data) == {}
    assert RawMessage.objects.get().user_id == alice.pk  # captured for the owner
    outsider = build_message(sender="eve@example.com", to="customer@example.com")
    with pytest.raises(smtplib.SMTPDataError):
        smtp.sendmail("eve@example.com", [shared.address], outsider)


def test_one_unknown_recipient_does_not_stop_the_others(smtp, alice, alice_address):
    data = build_message(sender=alice.email, to="bob@example.com")
    refused = smtp.sendmail(
        alice.email, [alice_address.address, "log+nope@capture.localhost"], data
    )
    assert list(refused) == ["log+nope@capture.localhost"]
    assert refused["log+nope@capture.localhost"][0] == 550
    assert RawMessage.objects.get().capture_address_id == alice_address.pk


def _read_replies(sock_file, n):
    codes = []
    while len(codes) < n:
        line = sock_file.readline()
        assert line, "connection closed early"
        if line[3:4] == b" ":
            codes.append(int(line[:3]))
    return codes


def test_pipelined_transactions_are_answered_in_order(listener, alice, alice_address):
    """RFC 2920: the client writes several whole transactions at once, then reads."""
    msgs = [
        build_message(sender=alice.email, to="bob@example.com", subject=f"p{i}") for i in range(3)
    ]
    with socket.create_connection(("127.0.0.1", listener.port), timeout=30) as sock:
        f = sock.makefile("rb")
        assert _read_replies(f, 1) == [220]
        sock.sendall(b"EHLO pipeliner.test\r\n")
        assert _read_replies(f, 1) == [250]
        batch = b""
        for m in msgs:
            batch += f"MAIL FROM:<{alice.email}>\r\nRCPT TO:<{alice_address.address}>\r\n".encode()
            batch += b"RCPT TO:<log+unknown@capture.localhost>\r\nDATA\r\n"
            batch += m.replace(b"\r\n.", b"\r\n..") + b".\r\n"
        batch += b"QUIT\r\n"
        sock.sendall(batch)
        codes = _read_replies(f, 5 * 3 + 1)
    assert codes == [250, 250, 550, 354, 250] * 3 + [221]
    stored = sorted(read_raw(r.storage_path) for r in RawMessage.objects.all())
    assert stored == sorted(msgs)


@pytest.mark.slow
def test_a_20_mb_message_is_stored_byte_for_byte(smtp, alice, alice_address):
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ab\r\n"
    body = line * (20 * 1024 * 1024 // len(line) + 1)
    data = build_message(sender=alice.email, to="bob@example.com") + body
    assert len(data) > 20 * 1024 * 1024
    assert smtp.sendmail(alice.email, [alice_address.address], data) == {}
    raw = RawMessage.objects.get()
    assert raw.size == len(data)
    assert read_raw(raw.storage_path) == data


def _self_signed(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "capture.localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("capture.localhost")]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_files(tmp_path):
    return _self_signed(tmp_path)


def test_starttls_with_a_configured_certificate(make_listener, tls_files, alice, alice_address):
    cert, key = tls_files
    lst = make_listener(tls_cert=str(cert), tls_key=str(key))
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = False  # connecting to 127.0.0.1; the chain is still verified
    data = build_message(sender=alice.email, to="bob@example.com")
    with smtplib.SMTP("127.0.0.1", lst.port, timeout=30) as client:
        client.ehlo("t")
        assert client.has_extn("starttls")
        client.starttls(context=ctx)
        client.ehlo("t")
        assert not client.has_extn("starttls")
        assert client.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert client.sendmail(alice.email, [alice_address.address], data) == {}
    assert read_raw(RawMessage.objects.get().storage_path) == data


def test_smtputf8_mail_with_utf8_headers_is_accepted(smtp, alice, alice_address):
    data = (
        f"From: Ålice <{alice.email}>\r\nTo: jörg@exämple.de\r\nSubject: grüße\r\n\r\nHallo\r\n"
    ).encode()
    assert (
        smtp.sendmail(alice.email, [alice_address.address], data, mail_options=["SMTPUTF8"]) == {}
    )
    assert read_raw(RawMessage.objects.get().storage_path) == data
