from __future__ import annotations

import pytest

from crm.addresses import (
    FREE_MAIL_DOMAINS,
    ROLE_LOCAL_PARTS,
    InvalidAddress,
    is_free_mail_domain,
    is_role_address,
    normalize_address,
    registrable_domain,
    split_address,
)


def test_normalize_address_lowercases_and_strips_brackets_and_whitespace():
    assert normalize_address("  <Jane.Doe@ACME-Widgets.COM>  ") == "jane.doe@acme-widgets.com"


def test_normalize_address_keeps_plus_addressing():
    assert normalize_address("Sales+EU@Globex.co.uk") == "sales+eu@globex.co.uk"


def test_normalize_address_converts_unicode_domain_to_idna():
    assert normalize_address("info@Bücher.de") == "info@xn--bcher-kva.de"


def test_normalize_address_strips_trailing_dot_of_domain():
    assert normalize_address("bob@initech.de.") == "bob@initech.de"


def test_normalize_address_accepts_already_idna_domain_unchanged():
    assert normalize_address("info@xn--bcher-kva.de") == "info@xn--bcher-kva.de"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "<>",
        "jane",
        "jane@",
        "@acme-widgets.com",
        "a@b@acme-widgets.com",
        "jane doe@acme-widgets.com",
        "jane@acme widgets.com",
        "jane@localhost",
        "jane@acme..com",
        "jane@-acme.com",
        "jane@[192.0.2.1]",
        "jane@192.0.2.1",
        '"jane"@acme.com',
        "jane@" + "a" * 250 + ".com",
        "x" * 250 + "@acme.com",
    ],
)
def test_normalize_address_rejects_unusable_values(value):
    with pytest.raises(InvalidAddress):
        normalize_address(value)


def test_invalid_address_is_a_value_error():
    assert issubclass(InvalidAddress, ValueError)


def test_split_address_returns_normalised_local_and_domain():
    assert split_address("Jane@Mail.ACME-Widgets.com") == ("jane", "mail.acme-widgets.com")


def test_registrable_domain_uses_the_public_suffix_list():
    assert registrable_domain("mail.acme.co.uk") == "acme.co.uk"
    assert registrable_domain("eu.mail.acme-widgets.com") == "acme-widgets.com"


def test_registrable_domain_accepts_an_address():
    assert registrable_domain("jane@sales.globex.co.uk") == "globex.co.uk"


def test_registrable_domain_is_idna_normalised():
    assert registrable_domain("shop.Bücher.de") == "xn--bcher-kva.de"


def test_registrable_domain_returns_the_input_when_the_list_gives_nothing():
    assert registrable_domain("co.uk") == "co.uk"


def test_free_mail_list_is_maintained_and_reasonably_large():
    assert len(FREE_MAIL_DOMAINS) >= 60
    assert {"gmail.com", "googlemail.com", "web.de", "proton.me", "qq.com"} <= FREE_MAIL_DOMAINS


def test_free_mail_domains_are_recognised_on_the_registrable_domain():
    assert is_free_mail_domain("gmail.com")
    assert is_free_mail_domain("jane@GMAIL.com")
    assert is_free_mail_domain("mx.web.de")


def test_free_mail_brands_match_any_country_suffix():
    assert is_free_mail_domain("hotmail.com.ar")
    assert is_free_mail_domain("yahoo.co.in")


def test_company_domains_are_not_free_mail():
    assert not is_free_mail_domain("acme-widgets.com")
    assert not is_free_mail_domain("globex.co.uk")


def test_extra_free_mail_domains_extend_the_list():
    assert is_free_mail_domain("mail.example-isp.net", extra={"example-isp.net"})
    assert not is_free_mail_domain("mail.example-isp.net")


def test_role_addresses_are_recognised_by_local_part():
    assert "mailer-daemon" in ROLE_LOCAL_PARTS
    assert is_role_address("MAILER-DAEMON@mx.globex.co.uk")
    assert is_role_address("postmaster@initech.de")
    assert is_role_address("bounces+12345@acme-widgets.com")


def test_addresses_starting_with_noreply_are_role_addresses():
    assert is_role_address("noreply-billing@acme-widgets.com")
    assert is_role_address("no-reply.eu@acme-widgets.com")


def test_people_are_not_role_addresses():
    assert not is_role_address("jane.doe@acme-widgets.com")
    assert not is_role_address("news.anchor@initech.de")


def test_extra_role_local_parts_extend_the_set():
    assert is_role_address("purchasing@acme-widgets.com", extra={"purchasing"})
    assert not is_role_address("purchasing@acme-widgets.com")


def test_shared_role_mailboxes_are_role_addresses():
    for local in ("info", "support", "sales", "admin", "billing", "no-reply", "donotreply"):
        assert is_role_address(f"{local}@acme-widgets.com"), local
    assert not is_role_address("jane.doe@acme-widgets.com")
