"""The SSRF guard: loopback, private, link-local and other non-public receivers are refused
when a subscription is saved and again, on the address resolved then, at send time."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from crm.models import ApiToken
from governance.audit import record_event
from governance.crypto import encrypt_secret
from governance.models import WebhookDelivery, WebhookSubscription
from governance.outbound.delivery import deliver_subscription
from governance.outbound.destinations import DestinationRefused, parse_target, refusal_reason
from governance.outbound.signing import generate_secret
from governance.outbound.subscriptions import WebhookRejected, create_subscription
from tests.factories import make_user

REFUSED = {
    "127.0.0.1": "loopback",
    "127.8.9.10": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",  # cloud metadata
    "100.64.0.1": "not a public address",  # shared address space (carrier NAT)
    "0.0.0.0": "unspecified",  # noqa: S104 (an address refused, not bound)
    "224.0.0.1": "multicast",
    "::1": "loopback",
    "fe80::1": "link-local",
    "fe80::1%eth0": "link-local",
    "fc00::1": "private",
    "fd12:3456::1": "private",
    "::": "unspecified",
    "ff02::1": "multicast",
    "::ffff:127.0.0.1": "loopback (IPv4 inside IPv6)",
    "::ffff:10.0.0.1": "private (IPv4 inside IPv6)",
    "::ffff:169.254.169.254": "link-local (IPv4 inside IPv6)",
    "2002:7f00:1::1": "loopback (IPv4 inside IPv6)",  # 6to4 of 127.0.0.1
    "64:ff9b::a9fe:a9fe": "link-local (IPv4 inside IPv6)",  # NAT64 of 169.254.169.254
}


@pytest.mark.parametrize("address", sorted(REFUSED))
def test_non_public_addresses_are_refused_with_their_reason(address):
    assert refusal_reason(address) == REFUSED[address]


@pytest.mark.parametrize("address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address):
    assert refusal_reason(address) is None


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "https://user:pass@example.com/hook",
        "https:///hook",
        "https://example.com:99999/",
        "https://exa mple.com/",
        "",
        "gopher://example.com/",
    ],
)
def test_urls_that_cannot_be_receivers_are_refused_before_any_lookup(url):
    with pytest.raises(DestinationRefused):
        parse_target(url)


def test_the_host_header_keeps_the_name_and_a_non_default_port():
    assert parse_target("https://Hooks.Example.COM/in?x=1").host_header == "hooks.example.com"
    target = parse_target("http://hooks.example.com:8080/in?x=1")
    assert (target.host_header, target.path) == ("hooks.example.com:8080", "/in?x=1")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost:8000/hook",  # a name that resolves to loopback
        "http://[::1]:8000/hook",
        "http://[::ffff:127.0.0.1]:8000/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/hook",
    ],
)
def test_creating_a_subscription_to_a_private_receiver_is_refused(url):
    with pytest.raises(WebhookRejected) as refused:
        create_subscription(name="x", url=url, event_types=["contact.created"])
    assert "refused" in refused.value.errors["url"][0]
    assert not WebhookSubscription.objects.exists()


@pytest.mark.django_db
def test_the_api_answers_400_naming_the_url_field():
    user = make_user()
    _, key = ApiToken.issue(user=user, name="t", scopes=["governance:admin"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    response = client.post(
        "/api/v1/webhooks/",
        {"name": "x", "url": "http://localhost:9/hook", "event_types": ["contact.created"]},
        format="json",
    )
    assert response.status_code == 400
    assert "127.0.0.1" in response.json()["url"][0] or "::1" in response.json()["url"][0]


@pytest.mark.django_db
def test_the_setting_allows_private_receivers(settings, receiver):
    settings.MAILWARDEN_WEBHOOKS_ALLOW_PRIVATE = True
    sub, _ = create_subscription(
        name="x", url=receiver.url(host="localhost"), event_types=["contact.created"]
    )
    assert sub.pk


@pytest.mark.django_db
def test_at_send_time_a_name_resolving_to_loopback_is_refused_and_nothing_is_sent(
    settings, receiver
):
    """A subscription saved while it was allowed (or whose name now resolves elsewhere: DNS
    rebinding) is checked again on the address resolved at send time."""
    settings.MAILWARDEN_WEBHOOKS_ALLOW_PRIVATE = False
    sub = WebhookSubscription.objects.create(
        name="rebound",
        url=receiver.url(host="localhost"),
        event_types=["contact.created"],
        secret_encrypted=encrypt_secret(generate_secret()),
    )
    record_event("crm.contact.created", object_type="crm.contact", object_id=1)
    deliver_subscription(sub.pk)
    delivery = WebhookDelivery.objects.get()
    assert receiver.received == []
    assert delivery.status == WebhookDelivery.Status.PENDING and delivery.attempts == 1
    assert delivery.last_error.startswith("refused: localhost resolves to")
    assert delivery.response_code is None
    attempt = delivery.attempt_log.get()
    assert attempt.destination == "" and "loopback" in attempt.error
    # The operator allows it: the same delivery goes out.
    settings.MAILWARDEN_WEBHOOKS_ALLOW_PRIVATE = True
    delivery.next_attempt_at = delivery.created
    delivery.save()
    deliver_subscription(sub.pk)
    assert len(receiver.received) == 1
    assert receiver.received[0].headers["host"] == f"localhost:{receiver.port}"


@pytest.mark.django_db
def test_every_resolved_address_is_checked_and_the_next_is_tried_when_one_refuses(
    settings, receiver, monkeypatch
):
    """A name with two addresses (the resolver is the one stand-in: no DNS server here):
    nothing listens on the first, the receiver on the second."""
    import governance.outbound.destinations as destinations

    monkeypatch.setattr(destinations, "resolve", lambda host, port: ["127.0.0.2", "127.0.0.1"])
    settings.MAILWARDEN_WEBHOOKS_ALLOW_PRIVATE = True
    sub, _ = create_subscription(
        name="x", url=receiver.url(host="hooks.example.com"), event_types=["contact.created"]
    )
    record_event("crm.contact.created", object_type="crm.contact", object_id=1)
    deliver_subscription(sub.pk)
    assert len(receiver.received) == 1
    assert receiver.received[0].headers["host"] == f"hooks.example.com:{receiver.port}"
    assert WebhookDelivery.objects.get().attempt_log.get().destination == "127.0.0.1"
    # One public and one private answer: refused as a whole when private is not allowed.
    monkeypatch.setattr(destinations, "resolve", lambda host, port: ["93.184.215.14", "10.0.0.1"])
    settings.MAILWARDEN_WEBHOOKS_ALLOW_PRIVATE = False
    with pytest.raises(DestinationRefused, match=r"10\.0\.0\.1"):
        destinations.resolve_destination("https://hooks.example.com/")
