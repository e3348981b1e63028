"""Is this open or click likely a machine's? (docs/governance.md, "Tracking: machine opens")

Three signs, each with a reason code stored on the event:

- the user agent of a privacy proxy that fetches images for the reader (``proxy:apple`` for
  Apple Mail Privacy Protection, ``proxy:google``, ``proxy:yahoo``), of a mail-security
  link scanner (``scanner:<vendor>``: Microsoft Safe Links / Defender, Barracuda, Mimecast,
  Proofpoint, ...), of a link-preview bot or an HTTP library (``bot``), or none at all
  (``no_user_agent``);
- a client address in the configured networks (``network``: MAILWARDEN_TRACKING_MACHINE_NETWORKS,
  by default Apple's and Exchange Online Protection's ranges);
- an event within MAILWARDEN_TRACKING_MACHINE_SECONDS of issuance (``too_soon``): no reader opens
  or clicks that fast, a scanner on delivery does.

Pure functions over strings; the network list is parsed once per distinct setting value.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from django.conf import settings

# Apple's 17.0.0.0/8 (Mail Privacy Protection's fetchers), Exchange Online Protection /
# Defender for Office 365 (Safe Links detonation runs from its outbound ranges).
DEFAULT_NETWORKS = (
    "17.0.0.0/8",
    "40.92.0.0/15",
    "40.107.0.0/16",
    "52.100.0.0/14",
    "104.47.0.0/17",
)
DEFAULT_MACHINE_SECONDS = 10

# (reason, substrings of the lower-cased agent): the first match wins. Plain substring tests
# (a few microseconds), not one big case-insensitive regex (a hundred: this runs per pixel).
_AGENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("proxy:google", ("googleimageproxy", "ggpht.com")),
    ("proxy:yahoo", ("yahoomailproxy",)),
    ("scanner:microsoft", ("safelinks", "safe links", "microsoft office existence", "ms-office",
                           "bingpreview", "microsoft-webdav")),
    ("scanner:barracuda", ("barracuda",)),
    ("scanner:mimecast", ("mimecast",)),
    ("scanner:proofpoint", ("proofpoint", "urldefense")),
    ("scanner:other", ("ironport", "cisco", "symantec", "trendmicro", "trend micro", "fireeye",
                       "trellix", "sophos", "forcepoint", "sonicwall", "fortiguard", "fortigate",
                       "fortimail", "zscaler", "paloalto", "palo alto", "cloudmark", "vade secure",
                       "vaderetro", "hornetsecurity", "spamtitan", "avanan", "checkpoint",
                       "check point", "abnormal")),
    ("bot", ("crawler", "spider", "preview", "facebookexternalhit", "whatsapp", "slack",
             "discord", "skype", "headlesschrome", "phantomjs", "python-", "curl/", "wget",
             "go-http-client", "okhttp", "java/", "libwww", "httpclient", "axios", "node-fetch",
             "aiohttp", "httpx")),
)  # fmt: skip
_BOT_WORD = re.compile(r"bot[/;]|\bbot\b")  # Googlebot/2.1, "bot"; not "Cubot" phones
# Apple Mail Privacy Protection fetches with a bare "Mozilla/5.0", or a WebKit agent that names
# no browser (a real Mail.app open says the same, but MPP's come from 17.0.0.0/8: see networks).
_APPLE_MPP = re.compile(r"^Mozilla/5\.0(?: \([^)]*\) AppleWebKit/[\d.]+ \(KHTML, like Gecko\))?$")


def machine_seconds() -> int:
    return int(getattr(settings, "MAILWARDEN_TRACKING_MACHINE_SECONDS", DEFAULT_MACHINE_SECONDS))


@lru_cache(maxsize=8)
def _networks(values: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    values = getattr(settings, "MAILWARDEN_TRACKING_MACHINE_NETWORKS", DEFAULT_NETWORKS)
    return _networks(tuple(values))


def agent_reason(user_agent: str) -> str:
    """The reason a user agent looks like a machine, or ""."""
    agent = user_agent.strip()
    if not agent:
        return "no_user_agent"
    if _APPLE_MPP.match(agent):
        return "proxy:apple"
    lower = agent.lower()
    for reason, needles in _AGENTS:
        if any(n in lower for n in needles):
            return reason
    return "bot" if _BOT_WORD.search(lower) else ""


def in_networks(address: str) -> bool:
    nets = networks()
    if not nets or not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in nets)


def machine_reason(user_agent: str, address: str, seconds_since_issued: float) -> str:
    """Why this event is likely a machine's ("" when it looks like a person)."""
    reason = agent_reason(user_agent)
    if reason:
        return reason
    if in_networks(address):
        return "network"
    if seconds_since_issued < machine_seconds():
        return "too_soon"
    return ""
