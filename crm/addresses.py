"""E-mail address normalisation and classification (pure Python, no Django).

Everything that compares addresses (contact matching, never-log lists, dedupe of
participants) goes through :func:`normalize_address` so that one mailbox has one
spelling in the database.
"""

from __future__ import annotations

import re
from functools import lru_cache

from publicsuffixlist import PublicSuffixList

__all__ = [
    "FREE_MAIL_DOMAINS",
    "ROLE_LOCAL_PARTS",
    "InvalidAddress",
    "is_free_mail_domain",
    "is_role_address",
    "normalize_address",
    "registrable_domain",
    "split_address",
]

MAX_ADDRESS_LENGTH = 254  # RFC 5321 4.5.3.1.3 path limit minus the angle brackets

# Characters that may not appear unquoted in a local part (RFC 5322 3.2.3 specials) plus
# whitespace and controls. Quoted local parts are rejected too: they are vanishingly rare
# in business mail and usually a sign of a mangled header.
_BAD_LOCAL = re.compile(r'[\s\x00-\x1f\x7f<>()\[\]\\,;:"]')
_DOMAIN_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")


class InvalidAddress(ValueError):
    """The value cannot be read as a single mailbox address."""


def normalize_address(value: str) -> str:
    """Return the canonical spelling of an address or raise InvalidAddress."""
    if not isinstance(value, str):
        raise InvalidAddress("not a string")
    text = value.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if not text:
        raise InvalidAddress("empty")
    if text.count("@") != 1:
        raise InvalidAddress("address must contain exactly one @")
    local, domain = text.split("@")
    if not local:
        raise InvalidAddress("empty local part")
    if _BAD_LOCAL.search(local):
        raise InvalidAddress("invalid character in local part")
    domain = _normalize_domain(domain)
    address = f"{local.lower()}@{domain}"
    if len(address) > MAX_ADDRESS_LENGTH:
        raise InvalidAddress("address too long")
    return address


def split_address(address: str) -> tuple[str, str]:
    """Return (local, domain) of an address, normalising it first."""
    local, _, domain = normalize_address(address).partition("@")
    return local, domain


@lru_cache(maxsize=4096)
def _normalize_domain(domain: str) -> str:
    """Lowercase, strip the trailing dot and convert to IDNA ASCII (xn--) form."""
    domain = domain.strip()
    if domain.endswith("."):
        domain = domain[:-1]
    if not domain:
        raise InvalidAddress("empty domain")
    if domain.startswith("["):
        raise InvalidAddress("address literals are not accepted")
    if domain.isascii():
        domain = domain.lower()
    else:
        try:
            # The stdlib codec implements IDNA 2003 (nameprep lowercases and maps, e.g. ß -> ss),
            # which is what most mail software still does for lookups.
            domain = domain.encode("idna").decode("ascii").lower()
        except UnicodeError as e:
            raise InvalidAddress("domain is not valid IDNA") from e
    if len(domain) > 253:
        raise InvalidAddress("domain too long")
    labels = domain.split(".")
    if len(labels) < 2:
        raise InvalidAddress("domain must contain a dot")
    for label in labels:
        if not _DOMAIN_LABEL.match(label):
            raise InvalidAddress("invalid domain label")
    if labels[-1].isdigit():
        raise InvalidAddress("IP addresses are not accepted as domains")
    return domain


_psl: PublicSuffixList | None = None


def _public_suffix_list() -> PublicSuffixList:
    # Loading the bundled list takes ~50 ms: do it once, on first use.
    global _psl
    if _psl is None:
        _psl = PublicSuffixList()
    return _psl


@lru_cache(maxsize=8192)
def registrable_domain(domain_or_address: str) -> str:
    """Return the registrable domain ('mail.acme.co.uk' -> 'acme.co.uk') of a domain or address."""
    text = domain_or_address.strip()
    if "@" in text:
        text = text.rpartition("@")[2]
    try:
        domain = _normalize_domain(text.strip("<>"))
    except InvalidAddress:
        return text.lower().rstrip(".")
    return _public_suffix_list().privatesuffix(domain) or domain


# fmt: off
FREE_MAIL_DOMAINS: frozenset[str] = frozenset(
    {
        # Google, Microsoft, Apple, Yahoo, AOL
        "gmail.com", "googlemail.com",
        "outlook.com", "outlook.de", "outlook.fr", "hotmail.com", "hotmail.co.uk", "hotmail.de",
        "hotmail.fr", "hotmail.it", "hotmail.es", "live.com", "live.co.uk", "live.de", "live.fr",
        "msn.com", "passport.com",
        "icloud.com", "me.com", "mac.com",
        "yahoo.com", "yahoo.co.uk", "yahoo.de", "yahoo.fr", "yahoo.es", "yahoo.it",
        "yahoo.co.jp", "yahoo.com.br", "ymail.com", "rocketmail.com",
        "aol.com", "aim.com",
        # Europe
        "gmx.de", "gmx.net", "gmx.at", "gmx.ch", "gmx.com", "web.de", "t-online.de",
        "freenet.de", "posteo.de", "mailbox.org", "arcor.de",
        "proton.me", "protonmail.com", "protonmail.ch", "pm.me", "tutanota.com", "tuta.io",
        "orange.fr", "wanadoo.fr", "free.fr", "laposte.net", "sfr.fr", "libero.it", "virgilio.it",
        "btinternet.com", "sky.com", "virginmedia.com", "seznam.cz", "wp.pl", "o2.pl",
        "onet.pl", "interia.pl",
        # Russia, Asia, elsewhere
        "mail.ru", "bk.ru", "inbox.ru", "list.ru", "yandex.ru", "yandex.com", "ya.ru",
        "qq.com", "163.com", "126.com", "sina.com", "naver.com", "daum.net", "hanmail.net",
        "rediffmail.com", "zoho.com", "zohomail.com", "fastmail.com", "hey.com", "mail.com",
        "email.com", "inbox.com", "hushmail.com", "gmx.us", "comcast.net", "verizon.net",
        "att.net", "sbcglobal.net", "bellsouth.net", "cox.net", "charter.net", "shaw.ca",
        "rogers.com", "bigpond.com", "optusnet.com.au", "uol.com.br", "bol.com.br",
    }
)
# fmt: on

# Brands whose free-mail service exists under many country suffixes (hotmail.*, yahoo.*):
# matched on the first label of the registrable domain.
_FREE_MAIL_BRANDS = frozenset({"hotmail", "yahoo", "live", "outlook", "gmx"})


def is_free_mail_domain(domain: str, extra: frozenset[str] | set[str] = frozenset()) -> bool:
    """True when the domain (or an address) belongs to a public free-mail provider."""
    registrable = registrable_domain(domain)
    if registrable in FREE_MAIL_DOMAINS or registrable in extra:
        return True
    text = domain.rpartition("@")[2].strip().lower().rstrip(".")
    if text in extra:
        return True
    return registrable.split(".", 1)[0] in _FREE_MAIL_BRANDS


# fmt: off
ROLE_LOCAL_PARTS: frozenset[str] = frozenset(
    {
        "noreply", "no-reply", "no_reply", "donotreply", "do-not-reply", "do_not_reply",
        "mailer-daemon", "mailerdaemon", "postmaster", "bounce", "bounces", "notification",
        "notifications", "notify", "alerts", "alert", "automailer", "auto-reply", "autoreply",
        "daemon", "newsletter", "newsletters", "news", "marketing", "mailer", "listserv",
        "majordomo", "abuse", "hostmaster", "webmaster", "root", "nobody", "system",
        "calendar-notification", "calendar-server",
        # shared role mailboxes: a team, not a person (never auto-created as contacts)
        "info", "support", "sales", "admin", "administrator", "billing", "help", "helpdesk",
        "contact", "office", "enquiries", "inquiries", "accounts", "accounting", "invoices",
        "invoice", "team", "careers", "jobs", "feedback", "privacy", "security", "legal",
        "service", "customerservice", "customer-service", "hello", "mail", "reception",
    }
)
# fmt: on


def is_role_address(address: str, extra: frozenset[str] | set[str] = frozenset()) -> bool:
    """True for machine or role mailboxes (noreply, mailer-daemon, ...) that are not people."""
    text = address.strip().strip("<>").lower()
    local = text.rpartition("@")[0] if "@" in text else text
    local = local.split("+", 1)[0]
    if local in ROLE_LOCAL_PARTS or local in extra:
        return True
    return local.startswith(("noreply", "no-reply"))
