"""A real HTTP receiver on loopback for the outbound webhook tests, and an independent
Standard Webhooks signature check (stdlib hmac, not the `standardwebhooks` package the
sender uses)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from governance.models import WebhookSubscription
from governance.outbound.subscriptions import create_subscription


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """http.server in a thread on 127.0.0.1; `stop()` closes the port (connection refused),
    `start()` opens the same port again. `status` is what it answers."""

    port: int = 0
    status: int = 204
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def start(self) -> Receiver:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                owner.received.append(Received(self.path, headers, body))
                self.send_response(owner.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def types(self) -> list[str]:
        return [r.payload["type"] for r in self.received]


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def allow_private(settings):
    """The loopback receiver is a private address: allowed here as an operator would."""
    settings.MAILWARDEN_WEBHOOKS_ALLOW_PRIVATE = True
    settings.MAILWARDEN_WEBHOOKS_TIMEOUT_SECONDS = 5.0
    return settings


def verify_signature(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks verification written from the spec, independent of the sender's code."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > 300:
        return False
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [
        part.split(",", 1)[1]
        for part in headers["webhook-signature"].split(" ")
        if part.startswith("v1,")
    ]
    return any(hmac.compare_digest(expected, sig) for sig in given)


def subscribe(url: str, *types: str, name: str = "crm") -> tuple[WebhookSubscription, str]:
    return create_subscription(
        name=name, url=url, event_types=list(types), actor="test", channel="cli"
    )
