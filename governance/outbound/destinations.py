"""The SSRF guard: where a webhook may be sent.

A receiver URL must be http(s) with a host, no user info, and resolve only to public
addresses: loopback, private (RFC 1918, fc00::/7), link-local (169.254/16: cloud metadata,
fe80::/10), shared (100.64/10), multicast, unspecified and reserved ranges are refused, also
when hidden in IPv6 (IPv4-mapped ::ffff:a.b.c.d, 6to4, Teredo, NAT64 64:ff9b::/96), unless the
operator sets MAILWARDEN_WEBHOOKS_ALLOW_PRIVATE. The URL is checked when a subscription is
saved and again when it is sent: each delivery run resolves the host once, every address it
resolves to must pass, and the requests go to those very addresses (Host header and TLS
SNI/certificate check keep the name), so a DNS answer that changes between the check and the
connection (DNS rebinding) cannot redirect them. Redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.ip_network("64:ff9b::/96")
DEFAULT_PORTS = {"http": 80, "https": 443}


class DestinationRefused(Exception):
    """The URL may not be used as a webhook receiver; the message says why (no secrets)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # lower-case, IDNA-encoded; an IP literal without brackets
    port: int
    path: str  # path and query, at least "/"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


@dataclass(frozen=True)
class Destination:
    target: Target
    address: str  # the IP the request connects to
    others: tuple[str, ...] = ()  # the host's other checked addresses, to try in turn

    def all(self) -> list[Destination]:
        """One destination per checked address, in resolver order."""
        return [Destination(self.target, a) for a in (self.address, *self.others)]

    @property
    def url(self) -> str:
        """The URL with the host replaced by the resolved address."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.target.scheme}://{host}:{self.target.port}{self.target.path}"


def allow_private() -> bool:
    return bool(getattr(settings, "MAILWARDEN_WEBHOOKS_ALLOW_PRIVATE", False))


def parse_target(url: str) -> Target:
    """Check the URL's form (no network); DestinationRefused when it cannot be a receiver."""
    if not isinstance(url, str) or not url.strip():
        raise DestinationRefused("Enter a URL.")
    if any(c in url for c in "\x00\r\n\t "):
        raise DestinationRefused("The URL contains spaces or control characters.")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as e:
        raise DestinationRefused(f"Not a valid URL ({e}).") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise DestinationRefused("Only http and https URLs can receive webhooks.")
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused("Credentials in the URL are not allowed; the signature is.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise DestinationRefused("The URL has no host.")
    try:
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise DestinationRefused("The host name is not valid.") from None
    if port == 0:
        raise DestinationRefused("Port 0 cannot be used.")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme, host, port or DEFAULT_PORTS[scheme], path)


def refusal_reason(address: str | IPAddress) -> str | None:
    """Why this address may not receive webhooks (None: it is a public unicast address)."""
    ip = ipaddress.ip_address(str(address).split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            reason = refusal_reason(embedded)
            return f"{reason} (IPv4 inside IPv6)" if reason else None
    for test, reason in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    ):
        if getattr(ip, test):
            return reason
    if not ip.is_global:
        return "not a public address"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to (an IP literal: itself), in resolver order."""
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        raise DestinationRefused(f"The host {host} could not be resolved ({e}).") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise DestinationRefused(f"The host {host} has no address.")
    return addresses


def check_addresses(host: str, addresses: list[str]) -> None:
    if allow_private():
        return
    for address in addresses:
        reason = refusal_reason(address)
        if reason:
            raise DestinationRefused(
                f"{host} resolves to {address}, a {reason} address: refused (set "
                "MAILWARDEN_WEBHOOKS_ALLOW_PRIVATE to allow private receivers)."
            )


def check_url(url: str) -> Target:
    """The check made when a subscription is saved: form, then every resolved address."""
    target = parse_target(url)
    check_addresses(target.host, resolve(target.host, target.port))
    return target


def resolve_destination(url: str) -> Destination:
    """The check made at send time: resolve once, check every address, connect only to them
    (the first that accepts a connection)."""
    target = parse_target(url)
    addresses = resolve(target.host, target.port)
    check_addresses(target.host, addresses)
    return Destination(target, addresses[0], tuple(addresses[1:]))
