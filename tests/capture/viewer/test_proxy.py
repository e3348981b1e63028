"""The image proxy's SSRF guard and limits (capture/viewer_proxy.py), with a real local HTTP
server standing in for a remote image host."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from capture import viewer_proxy
from capture.viewer_proxy import ProxyRefused, fetch_image, is_public_address


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x.png",
        "http://localhost/x.png",
        "http://10.1.2.3/x.png",
        "http://172.16.0.1/x.png",
        "http://192.168.1.1/x.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/x.png",
        "http://0.0.0.0/x.png",
        "http://[::1]/x.png",
        "http://[fd00::1]/x.png",
        "http://[fe80::1]/x.png",
        "http://[::ffff:127.0.0.1]/x.png",
        "http://2130706433/x.png",  # 127.0.0.1 as one number
    ],
)
def test_private_and_local_addresses_are_refused_before_any_connection(url, monkeypatch):
    def no_connect(*a, **k):
        raise AssertionError("connected")

    monkeypatch.setattr(viewer_proxy.urllib3.HTTPConnectionPool, "urlopen", no_connect)
    with pytest.raises(ProxyRefused) as e:
        fetch_image(url)
    assert e.value.reason in ("private_address", "unresolvable_host")


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x.png", "file:///etc/passwd", "http://user:pw@example.com/x.png"]
)
def test_other_schemes_and_credentials_are_refused(url):
    with pytest.raises(ProxyRefused):
        fetch_image(url)


def test_public_addresses_are_public():
    assert is_public_address("93.184.216.34")
    assert is_public_address("2606:2800:220:1:248:1893:25c8:1946")
    assert not is_public_address("127.0.0.1")


class ImageHost(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def do_GET(self):
        status, headers, body = self.routes.get(self.path, (404, {}, b""))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def image_host(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), ImageHost)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield base, settings
    server.shutdown()
    server.server_close()


PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


def test_a_local_host_is_refused_unless_the_operator_allows_its_network(image_host):
    base, settings = image_host
    ImageHost.routes = {"/a.png": (200, {"Content-Type": "image/png"}, PNG)}
    with pytest.raises(ProxyRefused) as e:
        fetch_image(f"{base}/a.png")
    assert e.value.reason == "private_address"
    settings.MAILWARDEN_IMAGE_PROXY_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    image = fetch_image(f"{base}/a.png")
    assert image.content_type == "image/png" and image.data == PNG


def test_limits_size_type_and_redirects(image_host, monkeypatch):
    base, settings = image_host
    settings.MAILWARDEN_IMAGE_PROXY_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    monkeypatch.setattr(viewer_proxy, "MAX_BYTES", 1000)
    ImageHost.routes = {
        "/big.png": (200, {"Content-Type": "image/png"}, b"x" * 5000),
        "/page.html": (200, {"Content-Type": "text/html"}, b"<script>"),
        "/vector.svg": (200, {"Content-Type": "image/svg+xml"}, b"<svg/>"),
        "/moved.png": (302, {"Location": "/a.png"}, b""),
        "/a.png": (200, {"Content-Type": "image/png"}, PNG),
        "/inside.png": (302, {"Location": "http://10.0.0.1/a.png"}, b""),
        "/loop.png": (302, {"Location": "/loop.png"}, b""),
    }
    reasons = {}
    for path in ("/big.png", "/page.html", "/vector.svg", "/inside.png", "/loop.png"):
        with pytest.raises(ProxyRefused) as e:
            fetch_image(base + path)
        reasons[path] = e.value.reason
    assert reasons == {
        "/big.png": "too_large",
        "/page.html": "not_an_image",
        "/vector.svg": "not_an_image",
        "/inside.png": "private_address",
        "/loop.png": "too_many_redirects",
    }
    assert fetch_image(base + "/moved.png").data == PNG
