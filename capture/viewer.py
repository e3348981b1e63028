"""The safe mail viewer's HTML: captured bodies sanitised with nh3 before a browser sees them.

A captured HTML body is hostile until proven otherwise. `sanitise_html` keeps the markup a
mail needs to be read (paragraphs, tables, links, inline colours and fonts) and removes
everything that runs or fetches: `<script>`, `<style>` (with its content), event handlers
(`on*`), `javascript:`/`data:`/relative URLs, CSS declarations that fetch (`url(...)`,
`image-set(...)`, `@import`, `expression(...)`, escapes that could hide them), and remote
images. An image stays only when the viewer asked to see images, and then its `src` is
rewritten to our proxy (`image_proxy_url`): the browser never contacts the sender's server,
the proxy fetches server-side with limits and an SSRF guard (capture/viewer_proxy.py).

The sanitised HTML is served in a sandboxed iframe (no scripts) from its own URL with a
restrictive Content-Security-Policy (`body_csp`), so even a sanitiser gap cannot run script
or fetch from another origin. docs/governance.md "The safe mail viewer" has the whole story.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import nh3
from django.core import signing

SIGNING_SALT = "mailwarden.viewer.image"
URL_SCHEMES = {"http", "https", "mailto"}
URL_ATTRIBUTES = {"href", "src", "cite", "longdesc", "action", "background", "poster"}
# Inline CSS that may stay: none of these properties takes a URL.
STYLE_PROPERTIES = {
    "color", "background-color", "font", "font-family", "font-size", "font-style",
    "font-weight", "text-align", "text-decoration", "text-transform", "line-height",
    "letter-spacing", "white-space", "vertical-align", "width", "height", "max-width",
    "min-width", "margin", "margin-top", "margin-right", "margin-bottom", "margin-left",
    "padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
    "border", "border-top", "border-right", "border-bottom", "border-left", "border-color",
    "border-style", "border-width", "border-collapse", "border-spacing", "border-radius",
    "display", "table-layout",
}  # fmt: skip
# A declaration carrying any of these is dropped whole (a fetch, or a way to hide one).
FORBIDDEN_CSS = re.compile(r"url\s*\(|image-set|image\s*\(|@import|expression|\\|/\*", re.I)
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "*": {"style", "align", "dir", "title"},
    "table": {"width", "border", "cellpadding", "cellspacing", "bgcolor"},
    "td": {"width", "colspan", "rowspan", "valign", "bgcolor"},
    "th": {"width", "colspan", "rowspan", "valign", "bgcolor"},
    "font": {"color", "face", "size"},
}
ALLOWED_TAGS = set(nh3.ALLOWED_TAGS) | {"font"}
REMOTE_IMG = re.compile(r"<img\b[^>]*\bsrc\s*=\s*[\"']?\s*https?:", re.I)


@dataclass(frozen=True)
class SanitisedBody:
    html: str
    blocked_images: int  # remote images left out (the viewer did not ask for them)
    proxied_images: int  # remote images rewritten to our proxy


def _safe_url(value: str) -> str | None:
    """An absolute http(s)/mailto URL, else None (relative URLs would reach our own origin)."""
    value = value.strip()
    scheme = urlsplit(value).scheme.lower()
    return value if scheme in URL_SCHEMES else None


def _clean_style(value: str) -> str | None:
    kept = [d.strip() for d in value.split(";") if d.strip() and not FORBIDDEN_CSS.search(d)]
    return "; ".join(kept) or None


def sanitise_html(
    html: str, *, images: bool = False, proxy: Callable[[str], str] | None = None
) -> SanitisedBody:
    """Sanitised HTML of a captured body. Remote images are dropped unless `images` is set,
    and then only through `proxy(url) -> our URL`; nothing else may point anywhere fetched."""
    counts = {"blocked": 0, "proxied": 0}

    def attribute_filter(tag: str, attr: str, value: str) -> str | None:
        if attr == "style":
            return _clean_style(value)
        if attr not in URL_ATTRIBUTES:
            return value
        if tag == "img" and attr == "src":
            url = _safe_url(value)
            if url is None or not url.lower().startswith(("http://", "https://")):
                return None
            if not images or proxy is None:
                counts["blocked"] += 1
                return None
            counts["proxied"] += 1
            return proxy(url)
        if attr in ("href", "cite"):
            return _safe_url(value)
        return None  # background=, poster=, action=: never a fetch

    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style"},
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=attribute_filter,
        url_schemes=URL_SCHEMES,
        filter_style_properties=STYLE_PROPERTIES,
        link_rel="noopener noreferrer",
    )
    return SanitisedBody(cleaned, counts["blocked"], counts["proxied"])


def has_remote_images(html: str) -> bool:
    """Whether the body would show remote images (without sanitising it: a cheap look)."""
    return bool(REMOTE_IMG.search(html or ""))


IMAGE_TOKEN_MAX_AGE = 3600  # seconds a "show images" link keeps working


def sign_image(email_id: int, url: str, viewer_id: int | None = None) -> str:
    """A token binding a remote image URL to the message it appeared in (and to the user it
    was shown to): the proxy fetches only URLs found in a body the viewer may read, never an
    arbitrary one. It expires after IMAGE_TOKEN_MAX_AGE."""
    data: dict = {"e": email_id, "u": url}
    if viewer_id is not None:
        data["v"] = viewer_id
    return signing.dumps(data, salt=SIGNING_SALT, compress=True)


def image_token(email_id: int, token: str) -> tuple[str, int | None] | None:
    """(URL, id of the user it was issued to, or None) of a valid token for this message."""
    try:
        data = signing.loads(token, salt=SIGNING_SALT, max_age=IMAGE_TOKEN_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired included
        return None
    if not isinstance(data, dict) or data.get("e") != email_id:
        return None
    url, viewer_id = data.get("u"), data.get("v")
    if not isinstance(url, str) or not isinstance(viewer_id, int | None):
        return None
    return url, viewer_id


def unsign_image(email_id: int, token: str) -> str | None:
    found = image_token(email_id, token)
    return found[0] if found else None


def body_csp(*, images: bool) -> str:
    """The Content-Security-Policy of the body frame: nothing runs, nothing is fetched but
    our own image proxy (and that only when the viewer asked to see images)."""
    parts = [
        "default-src 'none'",
        "style-src 'unsafe-inline'",
        "img-src 'self'" if images else "",
        "form-action 'none'",
        "base-uri 'none'",
        "frame-ancestors 'self'",
        "sandbox allow-popups allow-popups-to-escape-sandbox",
    ]
    return "; ".join(p for p in parts if p)
