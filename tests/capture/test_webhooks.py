"""ESP inbound webhooks: payloads shaped and signed as each provider documents them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from django.db import DatabaseError
from django.test import Client

import capture.intake
from capture.addresses import create_shared_capture_address, get_or_create_capture_address
from capture.models import RawMessage
from capture.storage import read_raw
from capture.webhooks import sns
from capture.webhooks.sns import canonical_string
from capture.webhooks.views import PROVIDERS
from governance.models import AuditEvent
from tests.conftest import FIXTURES
from tests.factories import make_user, make_user_address

pytestmark = [
    pytest.mark.django_db,
    # anymail warns on every SendGrid request that it no longer supports SendGrid officially.
    pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning"),
]

BASIC = "mailwarden:hook-secret"
MAILGUN_KEY = "key-mailgun-signing"
SENDER = "jane.doe@acme-widgets.com"  # From of the fixture
MESSAGE = (FIXTURES / "mail" / "multipart_alternative.eml").read_bytes()
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000.pem"


@pytest.fixture(autouse=True)
def anymail_settings(settings):
    settings.ANYMAIL = {
        "WEBHOOK_SECRET": BASIC,
        "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY,
        "AMAZON_SES_CLIENT_PARAMS": {},
    }


@pytest.fixture
def owner():
    user = make_user()
    make_user_address(user, SENDER)
    return user


@pytest.fixture
def capture_address(owner):
    return get_or_create_capture_address(owner)


def basic_auth(secret: str = BASIC) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()}


def client() -> Client:
    return Client(raise_request_exception=False)


# --- Mailgun: multipart form, HMAC-SHA256 over timestamp+token ------------------------------


def mailgun_form(recipient: str, *, key: str = MAILGUN_KEY, sender: str = SENDER) -> dict:
    timestamp, token = "1741000000", uuid.uuid4().hex
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {
        "timestamp": timestamp,
        "token": token,
        "signature": signature,
        "recipient": recipient,
        "sender": sender,
        "from": f"Jane Doe <{sender}>",
        "subject": "Quote for 500 blue widgets",
        "body-mime": MESSAGE.decode(),
    }


def test_mailgun_raw_mime_is_stored_byte_for_byte_and_processed(
    capture_address, owner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client().post(
            "/inbound/mailgun/mime/", mailgun_form(capture_address.address), **basic_auth()
        )
    assert response.status_code == 200, response.content
    raw = RawMessage.objects.get()
    assert read_raw(raw.storage_path) == MESSAGE
    assert (raw.channel, raw.source) == ("webhook", "webhook:mailgun")
    assert (raw.user, raw.capture_address) == (owner, capture_address)
    assert raw.envelope_from == SENDER
    raw.refresh_from_db()
    assert raw.status == "processed", raw.reason_code
    assert raw.email is not None


def test_mailgun_parsed_fields_are_rebuilt_into_a_message(capture_address, owner):
    from django.core.files.uploadedfile import SimpleUploadedFile

    form = mailgun_form(capture_address.address)
    del form["body-mime"]
    form["message-headers"] = json.dumps(
        [
            ["From", f"Jane Doe <{SENDER}>"],
            ["To", "sam.seller@mailwarden-demo.com"],
            ["Subject", "Quote for 500 blue widgets"],
            ["Message-Id", "<mailgun-parsed-1@mail.acme-widgets.com>"],
        ]
    )
    form["body-plain"] = "Hi Sam, could you send us a quote?"
    form["attachment-count"] = "1"
    form["attachment-1"] = SimpleUploadedFile("offer.txt", b"500 widgets", "text/plain")
    response = client().post("/inbound/mailgun/", form, **basic_auth())
    assert response.status_code == 200, response.content
    stored = read_raw(RawMessage.objects.get().storage_path)
    assert b"mailgun-parsed-1@mail.acme-widgets.com" in stored
    assert b"offer.txt" in stored


def test_mailgun_with_a_wrong_signature_is_403_and_stores_nothing(capture_address):
    form = mailgun_form(capture_address.address, key="key-someone-else")
    response = client().post("/inbound/mailgun/", form, **basic_auth())
    assert response.status_code == 403
    assert RawMessage.objects.count() == 0


def test_mailgun_without_a_signing_key_configured_refuses_everything(settings, capture_address):
    settings.ANYMAIL = {"WEBHOOK_SECRET": BASIC}
    form = mailgun_form(capture_address.address, key="")
    response = client().post("/inbound/mailgun/", form, **basic_auth())
    assert response.status_code == 403
    assert RawMessage.objects.count() == 0


# --- SendGrid: multipart, "send raw" puts the MIME in "email", envelope as JSON --------------


def sendgrid_form(recipients: list[str]) -> dict:
    return {
        "email": MESSAGE.decode(),
        "envelope": json.dumps({"to": recipients, "from": SENDER}),
        "charsets": json.dumps({"to": "UTF-8", "from": "UTF-8", "subject": "UTF-8"}),
        "SPF": "pass",
        "dkim": "{@acme-widgets.com : pass}",
        "spam_score": "0.1",
    }


def test_sendgrid_raw_mime_with_basic_auth_is_stored(capture_address, owner):
    response = client().post(
        "/inbound/sendgrid/", sendgrid_form([capture_address.address]), **basic_auth()
    )
    assert response.status_code == 200, response.content
    raw = RawMessage.objects.get()
    assert read_raw(raw.storage_path) == MESSAGE
    assert raw.user == owner
    assert raw.source == "webhook:sendgrid"


def test_sendgrid_without_basic_auth_or_with_a_wrong_one_is_403(capture_address):
    form = sendgrid_form([capture_address.address])
    assert client().post("/inbound/sendgrid/", form).status_code == 403
    wrong = basic_auth("mailwarden:guess")
    assert client().post("/inbound/sendgrid/", form, **wrong).status_code == 403
    assert RawMessage.objects.count() == 0


def test_every_capture_address_among_the_envelope_recipients_gets_its_own_capture(
    capture_address, owner
):
    colleague = make_user()
    make_user_address(colleague, "jane@acme-shared.example")
    shared = create_shared_capture_address(colleague, "Sales inbox")
    response = client().post(
        "/inbound/sendgrid/",
        sendgrid_form([capture_address.address, shared.address, "someone@example.org"]),
        **basic_auth(),
    )
    assert response.status_code == 200
    rows = {r.capture_address_id: r.user_id for r in RawMessage.objects.all()}
    # The shared address accepts any active user as sender: jane (the owner) is one.
    assert rows == {capture_address.pk: owner.pk, shared.pk: colleague.pk}


# --- Postmark: JSON with FromFull/ToFull/Headers/TextBody/HtmlBody/Attachments --------------


def postmark_payload(recipient: str, *, raw: bool) -> dict:
    payload = {
        "FromName": "Jane Doe",
        "MessageStream": "inbound",
        "From": SENDER,
        "FromFull": {"Email": SENDER, "Name": "Jane Doe", "MailboxHash": ""},
        "To": "Sam Seller <sam.seller@mailwarden-demo.com>",
        "ToFull": [{"Email": "sam.seller@mailwarden-demo.com", "Name": "Sam Seller"}],
        "Cc": "",
        "CcFull": [],
        "Bcc": recipient,
        "BccFull": [{"Email": recipient, "Name": ""}],
        "OriginalRecipient": recipient,
        "Subject": "Quote for 500 blue widgets",
        "MessageID": str(uuid.uuid4()),
        "ReplyTo": "",
        "Date": "Mon, 03 Mar 2025 10:15:00 +0100",
        "MailboxHash": "",
        "TextBody": "Hi Sam,\n\ncould you send us a quote for 500 blue widgets?\n",
        "HtmlBody": "<p>Hi Sam,</p><p>could you send us a quote?</p>",
        "StrippedTextReply": "",
        "Tag": "",
        "Headers": [
            {"Name": "Return-Path", "Value": f"<{SENDER}>"},
            {"Name": "Message-ID", "Value": "<postmark-test-1@mail.acme-widgets.com>"},
            {"Name": "X-Spam-Status", "Value": "No"},
        ],
        "Attachments": [
            {
                "Name": "offer.txt",
                "Content": base64.b64encode(b"500 widgets, 4.20 each").decode(),
                "ContentType": "text/plain",
                "ContentLength": 22,
            }
        ],
    }
    if raw:
        payload["RawEmail"] = MESSAGE.decode()
    return payload


def post_postmark(payload: dict, **headers):
    return client().post(
        "/inbound/postmark/", json.dumps(payload), content_type="application/json", **headers
    )


def test_postmark_raw_email_is_stored_byte_for_byte(capture_address, owner):
    response = post_postmark(postmark_payload(capture_address.address, raw=True), **basic_auth())
    assert response.status_code == 200, response.content
    raw = RawMessage.objects.get()
    assert read_raw(raw.storage_path) == MESSAGE
    assert raw.user == owner


def test_postmark_parsed_fields_are_rebuilt_into_a_message_and_processed(
    capture_address, django_capture_on_commit_callbacks
):
    payload = postmark_payload(capture_address.address, raw=False)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_postmark(payload, **basic_auth())
    assert response.status_code == 200
    raw = RawMessage.objects.get()
    stored = read_raw(raw.storage_path)
    assert b"postmark-test-1@mail.acme-widgets.com" in stored
    assert b"offer.txt" in stored
    raw.refresh_from_db()
    assert raw.status == "processed", raw.reason_code
    assert "postmark-test-1@mail.acme-widgets.com" in raw.email.message_id


def test_postmark_without_basic_auth_is_403(capture_address):
    response = post_postmark(postmark_payload(capture_address.address, raw=True))
    assert response.status_code == 403
    assert RawMessage.objects.count() == 0


def test_a_verified_post_that_is_not_json_is_a_400_and_stores_nothing(capture_address):
    response = client().post(
        "/inbound/postmark/", "not json", content_type="application/json", **basic_auth()
    )
    assert response.status_code == 400
    assert RawMessage.objects.count() == 0


def test_a_provider_retrying_the_same_event_stores_it_once(capture_address):
    payload = postmark_payload(capture_address.address, raw=True)
    assert post_postmark(payload, **basic_auth()).status_code == 200
    assert post_postmark(payload, **basic_auth()).status_code == 200
    assert RawMessage.objects.count() == 1


# --- Amazon SES: an SNS notification, signed with SNS's certificate -------------------------


@pytest.fixture
def sns_signer(monkeypatch):
    """A key and certificate standing in for Amazon's: only the certificate download is faked."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return pem

    sns.clear_cert_cache()
    monkeypatch.setattr(sns, "fetch_signing_cert", fetch)

    def sign(message: dict, version: str = "2") -> dict:
        message = {**message, "SignatureVersion": version, "SigningCertURL": CERT_URL}
        digest = hashes.SHA256() if version == "2" else hashes.SHA1()  # noqa: S303
        signature = key.sign(canonical_string(message), padding.PKCS1v15(), digest)
        message["Signature"] = base64.b64encode(signature).decode()
        return message

    sign.fetched = fetched  # type: ignore[attr-defined]
    yield sign
    sns.clear_cert_cache()


def ses_notification(recipient: str) -> dict:
    ses_event = {
        "notificationType": "Received",
        "mail": {
            "timestamp": "2025-03-03T09:15:02.000Z",
            "source": SENDER,
            "messageId": "ses-" + uuid.uuid4().hex,
            "destination": ["sam.seller@mailwarden-demo.com", recipient],
            "headersTruncated": False,
        },
        "receipt": {
            "timestamp": "2025-03-03T09:15:02.000Z",
            "processingTimeMillis": 420,
            "recipients": [recipient],
            "spamVerdict": {"status": "PASS"},
            "virusVerdict": {"status": "PASS"},
            "spfVerdict": {"status": "PASS"},
            "dkimVerdict": {"status": "PASS"},
            "dmarcVerdict": {"status": "PASS"},
            "action": {
                "type": "SNS",
                "topicArn": "arn:aws:sns:eu-west-1:123456789012:mailwarden-inbound",
                "encoding": "BASE64",
            },
        },
        "content": base64.b64encode(MESSAGE).decode(),
    }
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:mailwarden-inbound",
        "Subject": "Amazon SES Email Receipt Notification",
        "Message": json.dumps(ses_event),
        "Timestamp": "2025-03-03T09:15:03.000Z",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    }


def post_sns(message: dict, **extra):
    return client().post(
        "/inbound/amazon_ses/",
        json.dumps(message),
        content_type="text/plain; charset=UTF-8",
        HTTP_X_AMZ_SNS_MESSAGE_TYPE=message["Type"],
        HTTP_X_AMZ_SNS_MESSAGE_ID=message["MessageId"],
        **extra,
    )


@pytest.mark.parametrize("version", ["1", "2"])
def test_amazon_ses_signed_notification_is_stored_byte_for_byte(
    sns_signer, capture_address, owner, version
):
    response = post_sns(
        sns_signer(ses_notification(capture_address.address), version), **basic_auth()
    )
    assert response.status_code == 200, response.content
    raw = RawMessage.objects.get()
    assert read_raw(raw.storage_path) == MESSAGE
    assert (raw.user, raw.source) == (owner, "webhook:amazon_ses")
    assert sns_signer.fetched == [CERT_URL]


def test_amazon_ses_with_a_tampered_message_is_403_and_stores_nothing(sns_signer, capture_address):
    signed = sns_signer(ses_notification(capture_address.address))
    event = json.loads(signed["Message"])
    event["receipt"]["recipients"] = [get_or_create_capture_address(make_user()).address]
    signed["Message"] = json.dumps(event)
    assert post_sns(signed, **basic_auth()).status_code == 403
    assert RawMessage.objects.count() == 0


def test_amazon_ses_certificate_from_outside_amazon_is_refused(sns_signer, capture_address):
    signed = sns_signer(ses_notification(capture_address.address))
    signed["SigningCertURL"] = "https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem"
    assert post_sns(signed, **basic_auth()).status_code == 403
    assert sns_signer.fetched == []
    assert RawMessage.objects.count() == 0


def test_amazon_ses_without_basic_auth_gets_snss_401_challenge_and_stores_nothing(
    sns_signer, capture_address
):
    response = post_sns(sns_signer(ses_notification(capture_address.address)))
    assert response.status_code == 401
    assert "Basic" in response["WWW-Authenticate"]
    assert RawMessage.objects.count() == 0


# --- the recipient and the sender decide, as with SMTP --------------------------------------


def test_an_unknown_capture_address_stores_nothing_but_answers_200(settings):
    unknown = f"log+00000000deadbeef@{settings.MAILWARDEN_CAPTURE_DOMAIN}"
    response = client().post("/inbound/sendgrid/", sendgrid_form([unknown]), **basic_auth())
    assert response.status_code == 200
    assert RawMessage.objects.count() == 0


def test_a_sender_who_is_not_the_owner_is_refused_and_audited(capture_address):
    stranger = make_user()
    address = get_or_create_capture_address(stranger)
    response = client().post("/inbound/sendgrid/", sendgrid_form([address.address]), **basic_auth())
    assert response.status_code == 200
    assert RawMessage.objects.count() == 0
    event = AuditEvent.objects.get(action="capture.refused")
    assert event.object_id == str(address.pk)
    assert event.detail == {"provider": "sendgrid", "reason": "sender_not_allowed"}
    assert SENDER not in json.dumps(event.detail)


def test_a_store_outage_answers_503_so_the_provider_retries(monkeypatch, capture_address):
    def broken(*args, **kwargs):
        raise DatabaseError("connection lost")

    monkeypatch.setattr(capture.intake, "insert_raw_rows", broken)
    response = client().post(
        "/inbound/sendgrid/", sendgrid_form([capture_address.address]), **basic_auth()
    )
    assert response.status_code == 503
    assert response["Retry-After"] == "60"


@pytest.mark.parametrize("provider", [p.slug for p in PROVIDERS])
def test_no_provider_accepts_posts_until_its_verification_is_configured(settings, provider):
    settings.ANYMAIL = {}
    response = client().post(
        f"/inbound/{provider}/", "{}", content_type="application/json", **basic_auth()
    )
    assert response.status_code == 403
    assert RawMessage.objects.count() == 0
