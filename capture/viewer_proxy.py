"""The mail viewer's image proxy: fetches a remote image server-side, so the reader's browser
never contacts the sender's server (no tracking pixel fires, no address leaks).

Guards: http/https only, no credentials in the URL, standard ports unless configured; the
host is resolved once and every address must be public (loopback, private, link-local,
shared, multicast, reserved and unspecified ranges are refused, IPv4-mapped IPv6 too), and
the connection goes to that resolved address (a DNS answer that changes between check and
connect cannot redirect us inside); redirects are followed by hand, at most MAX_REDIRECTS,
each re-checked; the answer must be a raster image (SVG can carry script) no larger than
MAX_BYTES, read within TIMEOUT seconds overall. `MAILWARDEN_IMAGE_PROXY_ALLOWED_NETWORKS`
(a list of CIDRs, default empty) lets an operator allow an internal image host.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import urllib3
from django.conf import settings

MAX_BYTES = 2 * 1024 * 1024
TIMEOUT = 5.0
MAX_REDIRECTS = 3
ALLOWED_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp")


class ProxyRefused(Exception):
    """The image was not fetched: `reason` says why (a short code, no URL)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class FetchedImage:
    content_type: str
    data: bytes


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [
        ipaddress.ip_network(n, strict=False)
        for n in getattr(settings, "MAILWARDEN_IMAGE_PROXY_ALLOWED_NETWORKS", ())
    ]


def is_public_address(address: str) -> bool:
    """Whether the proxy may connect to this IP address."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in net for net in _allowed_networks()):
        return True
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def resolve_public(host: str, port: int) -> str:
    """One address of `host` to connect to; ProxyRefused if any of its addresses is not public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise ProxyRefused("unresolvable_host") from e
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise ProxyRefused("unresolvable_host")
    for address in addresses:
        if not is_public_address(address.split("%", 1)[0]):
            raise ProxyRefused("private_address")
    return addresses[0]


def _check_url(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ProxyRefused("bad_scheme")
    if parts.username or parts.password or not parts.hostname:
        raise ProxyRefused("bad_url")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as e:
        raise ProxyRefused("bad_url") from e
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, parts.hostname, port, path


def fetch_image(url: str) -> FetchedImage:
    """The image at `url`, fetched under the guards above; ProxyRefused otherwise."""
    deadline = time.monotonic() + TIMEOUT
    for _ in range(MAX_REDIRECTS + 1):
        scheme, host, port, path = _check_url(url)
        address = resolve_public(host, port)
        remaining = max(0.1, deadline - time.monotonic())
        timeout = urllib3.Timeout(connect=min(3.0, remaining), read=remaining)
        if scheme == "https":
            pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
                address,
                port,
                timeout=timeout,
                retries=False,
                server_hostname=host,
                assert_hostname=host,
                cert_reqs="CERT_REQUIRED",
            )
        else:
            pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
        try:
            response = pool.urlopen(
                "GET",
                path,
                headers={
                    "Host": host if port in (80, 443) else f"{host}:{port}",
                    "User-Agent": "Mailwarden image proxy",
                    "Accept": "image/*",
                },
                redirect=False,
                preload_content=False,
            )
        except urllib3.exceptions.HTTPError as e:
            raise ProxyRefused("fetch_failed") from e
        try:
            if response.status in (301, 302, 303, 307, 308):
                location = response.headers.get("Location")
                if not location:
                    raise ProxyRefused("bad_redirect")
                url = urljoin(url, location)
                continue
            if response.status != 200:
                raise ProxyRefused("bad_status")
            ctype = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype not in ALLOWED_TYPES:
                raise ProxyRefused("not_an_image")
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > MAX_BYTES:
                raise ProxyRefused("too_large")
            data = bytearray()
            try:
                for chunk in response.stream(64 * 1024):
                    data += chunk
                    if len(data) > MAX_BYTES:
                        raise ProxyRefused("too_large")
                    if time.monotonic() > deadline:
                        raise ProxyRefused("too_slow")
            except urllib3.exceptions.HTTPError as e:
                raise ProxyRefused("fetch_failed") from e
            return FetchedImage(ctype, bytes(data))
        finally:
            response.release_conn()
            pool.close()
    raise ProxyRefused("too_many_redirects")
