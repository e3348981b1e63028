"""The viewer's sanitiser: nothing that runs or fetches survives (capture/viewer.py)."""

from __future__ import annotations

import pytest

from capture.viewer import body_csp, sanitise_html, sign_image, unsign_image

HOSTILE = """
<p onclick="steal()" onmouseover="steal()">Hello <b>there</b></p>
<script>alert(1)</script>
<a href="javascript:alert(2)">click</a>
<a href="JaVaScRiPt&colon;alert(3)">click</a>
<a href="/admin/logout/">relative</a>
<a href="https://example.com/offer">offer</a>
<img src="https://tracker.example/pixel.gif" onerror="alert(4)">
<img src="data:image/png;base64,AAAA">
<p style="color: red; background: url(https://tracker.example/bg.png)">styled</p>
<p style="color: blue; background-image: u\\72l(https://tracker.example/x)">escaped</p>
<div style="width: 10px; list-style-image: url('https://tracker.example/l.png')">list</div>
<style>@import url(https://tracker.example/a.css); p { background: url(https://x/) }</style>
<table background="https://tracker.example/t.png"><tr><td>cell</td></tr></table>
<iframe src="https://evil.example/"></iframe>
<form action="https://evil.example/"><input name="q"></form>
<svg><script>alert(5)</script></svg>
"""


def test_scripts_handlers_javascript_urls_and_relative_urls_are_removed():
    html = sanitise_html(HOSTILE).html.lower()
    assert "<script" not in html and "alert(" not in html
    assert "onclick" not in html and "onerror" not in html and "onmouseover" not in html
    assert "javascript" not in html
    assert "/admin/logout/" not in html
    assert "<iframe" not in html and "<form" not in html and "<input" not in html
    assert 'href="https://example.com/offer"' in html
    assert "hello <b>there</b>" in html


def test_css_that_fetches_is_removed_and_harmless_css_stays():
    html = sanitise_html(HOSTILE).html.lower()
    assert "url(" not in html and "@import" not in html and "tracker.example" not in html
    flat = html.replace(" ", "")
    # Only the declaration that fetches goes; its harmless neighbours stay.
    assert "color:red" in flat and "color:blue" in flat and "width:10px" in flat
    assert "\\" not in html and "background" not in html and "list-style" not in html


def test_remote_images_are_blocked_unless_asked_then_only_through_the_proxy():
    blocked = sanitise_html(HOSTILE)
    assert "<img" in blocked.html and "src=" not in blocked.html.split("<img", 1)[1].split(">")[0]
    assert blocked.blocked_images == 1 and blocked.proxied_images == 0
    shown = sanitise_html(
        HOSTILE, images=True, proxy=lambda url: "/proxy/?src=" + sign_image(7, url)
    )
    assert shown.proxied_images == 1
    assert "tracker.example" not in shown.html  # the browser is never told the remote URL
    src = shown.html.split('src="', 1)[1].split('"', 1)[0]
    assert src.startswith("/proxy/?src=")
    assert unsign_image(7, src.removeprefix("/proxy/?src=")) == "https://tracker.example/pixel.gif"
    assert "data:image" not in shown.html


def test_image_tokens_are_bound_to_their_message_and_cannot_be_forged():
    token = sign_image(7, "https://a.example/x.png")
    assert unsign_image(7, token) == "https://a.example/x.png"
    assert unsign_image(8, token) is None
    assert unsign_image(7, token[:-2] + "xx") is None
    assert unsign_image(7, "http://127.0.0.1/") is None


@pytest.mark.parametrize("images", [False, True])
def test_the_body_policy_runs_nothing_and_fetches_only_our_proxy(images):
    csp = body_csp(images=images)
    assert "default-src 'none'" in csp
    assert "script-src" not in csp and "allow-scripts" not in csp
    assert "sandbox" in csp
    assert ("img-src 'self'" in csp) == images
