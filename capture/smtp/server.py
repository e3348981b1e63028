"""The SMTP capture listener: aiosmtpd sessions, a thread pool for lookups, one group-commit
writer, and a graceful shutdown that lets messages in DATA finish.

`CaptureListener` runs on an asyncio loop (`serve_forever` in the management command,
`start_listener_thread` for the embedded mode and tests). See docs/smtp.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import re
import signal
import ssl
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, syntax
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache

# django.db.Error covers DatabaseError and InterfaceError (a connection the server closed).
from django.db import Error as DatabaseError
from django.db import connection

from capture import dispatch
from capture.errors import MessageTooLarge, StoreUnavailable
from capture.intake import RawSpec
from capture.models.raw import Channel
from capture.smtp import screening
from capture.smtp.data import DataState, read_data
from capture.smtp.writer import GroupCommitWriter

log = logging.getLogger(__name__)

# aiosmtpd's own wording for these carries no enhanced status code (RFC 3463).
_REWRITES = {
    "552 Error: Too much mail data": screening.TOO_BIG,
    "552 Error: message size exceeds fixed maximum message size": screening.TOO_BIG,
}
SHUTDOWN_STATUS = b"421 4.3.2 Service shutting down, try again later\r\n"

# "<local@domain>" with a dot-atom local part and a plain DNS domain, then nothing or ESMTP
# parameters: what every real client sends in MAIL FROM / RCPT TO (RFC 5321 4.1.2).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_PATH = re.compile(
    rf"<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>(?:[ \t]+([A-Za-z0-9].*))?\Z",
    re.DOTALL,
)


def make_tls_context(cert: str, key: str) -> ssl.SSLContext:
    """Server-side context for STARTTLS from PEM files."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


class CaptureSMTP(SMTP):
    """aiosmtpd's session with RFC 3463 codes and a flag saying "in DATA" for shutdown."""

    def __init__(self, *args: Any, registry: set[CaptureSMTP], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_data = False
        self._registry = registry

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._registry.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._registry.discard(self)
        super().connection_lost(error)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's path parser, with a fast path for the plain `<local@domain>` form.

        aiosmtpd defines a typing.Protocol class on every call and runs the full RFC 5322
        header grammar; for MAIL and RCPT of every message that cost the listener more than
        storing the message (bench/smtp_accept.py). The fast path returns exactly what the
        full parser returns for the paths it accepts (tests/capture/smtp/test_path_parser.py);
        anything else (quoting, comments, address literals, UTF-8) goes to aiosmtpd.
        """
        m = _SIMPLE_PATH.match(arg)
        if m is None:
            return super()._getaddr(arg)
        address = m.group(1)
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, m.group(2) or ""

    async def push(self, status: Any) -> None:
        if isinstance(status, str):
            status = _REWRITES.get(status, status)
        await super().push(status)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA command with the message read in blocks (capture/smtp/data.py);
        the checks before it and the answers after it are aiosmtpd's."""
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        self.in_data = True  # until the handler has answered: a shutdown waits for it
        try:
            try:
                result = await read_data(
                    self._reader,
                    size_limit=self.data_size_limit or 0,
                    line_limit=self.line_length_limit,
                )
            except asyncio.CancelledError:  # the connection was lost during DATA
                self._writer.close()
                raise
            except asyncio.IncompleteReadError:
                self._writer.close()
                return
            if result.state is not DataState.NOMINAL:
                await self.push(
                    "500 Line too long (see RFC5321 4.5.3.1.6)"
                    if result.state is DataState.TOO_LONG
                    else "552 Error: Too much mail data"
                )
                self._set_post_data_state()
                return
            # decode_data is off: content and original_content are the same bytes.
            self.envelope.content = self.envelope.original_content = result.content
            status = await self._call_handler_hook("DATA")
        finally:
            self.in_data = False
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)


class CaptureHandler:
    """aiosmtpd handler: RCPT and DATA decisions run in threads, stores go to the writer."""

    def __init__(self, writer: GroupCommitWriter, executor: DbThreadPool) -> None:
        self.writer = writer
        self.executor = executor
        self.accepted = 0
        # The checks can run on the event loop when they need neither the database (the
        # resolution cache hit) nor the network (an in-process cache for the counters).
        self.inline_ok = isinstance(caches["default"], LocMemCache)

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.wrap_future(self.executor.submit(fn, *args))

    async def _screen(self, fn: Any, *args: Any) -> Any:
        if self.inline_ok:
            try:
                return fn(*args, fast=True)
            except screening.NeedsDatabase:
                pass
        return await self._in_thread(fn, *args)

    async def handle_exception(self, error: Exception) -> str:
        # A bug of ours is "we are broken", never the client's fault: ask it to retry.
        log.error("SMTP session error: %s", error.__class__.__name__, exc_info=error)
        return screening.STORE_DOWN

    async def handle_EHLO(
        self, server: SMTP, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        # RFC 2920: aiosmtpd reads commands strictly in order, so pipelining is safe. We offer
        # no AUTH (the capture address is the credential; the sender rule is the check).
        out = [r for r in responses if not r[4:].upper().startswith("AUTH")]
        out.insert(len(out) - 1, "250-PIPELINING")
        out.insert(len(out) - 1, "250-ENHANCEDSTATUSCODES")
        return out

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        try:
            status, target = await self._screen(
                screening.screen_recipient, address, envelope.mail_from or ""
            )
        except DatabaseError:
            log.warning("SMTP RCPT: database unavailable")
            return screening.STORE_DOWN
        if status is not None:
            return status
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        if not hasattr(envelope, "capture_targets"):
            envelope.capture_targets = []
        envelope.capture_targets.append(target)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        data: bytes = envelope.original_content or b""
        targets: list[screening.Target] = getattr(envelope, "capture_targets", [])
        if not targets:
            return "554 5.5.1 No valid recipients"
        if len(data) > settings.MAILWARDEN_MAX_MESSAGE_BYTES:
            return screening.TOO_BIG
        headers = screening.read_headers(data)
        mail_from = envelope.mail_from or ""
        try:
            verdict = await self._screen(screening.screen_message, targets, mail_from, headers)
        except DatabaseError:
            log.warning("SMTP DATA: database unavailable")
            return screening.STORE_DOWN
        if verdict.status is not None:
            return verdict.status
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
        specs = [
            RawSpec(
                data=data,
                channel=Channel.SMTP,
                user_id=t.user_id,
                capture_address_id=t.address_id,
                envelope_from=mail_from,
                envelope_to=[t.rcpt],
                source=f"smtp:{peer}",
                options=dict(verdict.options),
            )
            for t in targets
        ]
        try:
            await self.writer.submit_async(specs)
        except MessageTooLarge:
            return screening.TOO_BIG
        except StoreUnavailable:
            return screening.STORE_DOWN
        self.accepted += 1
        return "250 2.0.0 OK: captured"


def call_with_reconnect(fn: Any, *args: Any) -> Any:
    """Run `fn`; when it fails on a database error, retry once on a new connection.

    A database restart breaks every open connection; the first query on each finds out.
    Reconnecting at once means a restart costs in-flight work at most one 451, not one per
    pooled connection. A second failure is real: the caller answers 451 4.3.0.
    """
    try:
        return fn(*args)
    except DatabaseError:
        connection.close()
    try:
        return fn(*args)
    except DatabaseError:
        connection.close()
        raise


class DbThreadPool:
    """A few threads for the listener's database lookups, each closing its own connection
    when the pool stops (a connection belongs to the thread that opened it)."""

    _STOP = object()

    def __init__(self, size: int, name: str = "mailwarden-smtp-db") -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(size)
        ]
        for t in self._threads:
            t.start()

    def submit(self, fn: Any, *args: Any) -> Future:
        fut: Future = Future()
        self._queue.put((fn, args, fut))
        return fut

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._STOP:
                break
            fn, args, fut = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(call_with_reconnect(fn, *args))
            except BaseException as e:
                fut.set_exception(e)
        connection.close()

    def shutdown(self) -> None:
        for _ in self._threads:
            self._queue.put(self._STOP)
        for t in self._threads:
            t.join(30)


@dataclass
class ListenerStats:
    accepted: int
    batches: int
    stored: int


class CaptureListener:
    """The listener's parts and lifecycle; `port=0` picks a free port (tests)."""

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        *,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        max_bytes: int | None = None,
        lookup_threads: int = 4,
        window_ms: float | None = None,
        sync: str | None = None,
        process: bool = True,
    ) -> None:
        self.host = host or settings.MAILWARDEN_SMTP_HOST
        self.port = settings.MAILWARDEN_SMTP_PORT if port is None else port
        cert = settings.MAILWARDEN_SMTP_TLS_CERT if tls_cert is None else tls_cert
        key = settings.MAILWARDEN_SMTP_TLS_KEY if tls_key is None else tls_key
        self.tls_context = make_tls_context(cert, key or cert) if cert else None
        self.max_bytes = settings.MAILWARDEN_MAX_MESSAGE_BYTES if max_bytes is None else max_bytes
        self.writer = GroupCommitWriter(
            window_ms=window_ms,
            sync=sync,
            on_stored=dispatch.enqueue_processing if process else None,
        )
        self.executor = DbThreadPool(lookup_threads)
        self.handler = CaptureHandler(self.writer, self.executor)
        self.sessions: set[CaptureSMTP] = set()
        self._server: asyncio.base_events.Server | None = None

    def _factory(self) -> CaptureSMTP:
        return CaptureSMTP(
            self.handler,
            registry=self.sessions,
            data_size_limit=self.max_bytes,
            enable_SMTPUTF8=True,
            hostname=settings.MAILWARDEN_CAPTURE_DOMAIN,
            ident="Mailwarden capture",
            tls_context=self.tls_context,
            loop=asyncio.get_running_loop(),
        )

    async def start(self) -> None:
        # aiosmtpd logs every command with the peer's addresses at INFO: personal data in
        # logs (docs/operations.md), and a measurable cost per message. Keep its warnings only.
        if logging.getLogger("mail.log").getEffectiveLevel() < logging.WARNING:
            logging.getLogger("mail.log").setLevel(logging.WARNING)
        self.writer.start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._factory, host=self.host, port=self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("SMTP capture listener on %s:%s", self.host, self.port)

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let sessions in DATA finish (bounded), close the rest, drain the writer."""
        grace = settings.MAILWARDEN_SMTP_SHUTDOWN_GRACE_SECONDS if grace is None else grace
        loop = asyncio.get_running_loop()
        if self._server is not None:
            self._server.close()
        deadline = loop.time() + grace
        while True:
            for session in list(self.sessions):
                transport = session.transport
                if session.in_data or transport is None or transport.is_closing():
                    continue
                # A TLS transport whose peer just left can lose its SSL protocol between the
                # check and the write (asyncio's sslproto): the goodbye is then moot.
                with contextlib.suppress(AttributeError, RuntimeError, ConnectionError):
                    transport.write(SHUTDOWN_STATUS)
                transport.close()
            busy = [s for s in self.sessions if s.in_data]
            if not busy or loop.time() >= deadline:
                break
            await asyncio.sleep(0.05)
        for session in list(self.sessions):
            if session.transport is not None:
                session.transport.close()
        await loop.run_in_executor(None, self.writer.stop)
        await loop.run_in_executor(None, self.executor.shutdown)
        log.info("SMTP capture listener stopped (%d messages accepted)", self.handler.accepted)

    def stats(self) -> ListenerStats:
        return ListenerStats(self.handler.accepted, self.writer.batches, self.writer.messages)


def serve_forever(listener: CaptureListener, *, ready: Any = None) -> None:
    """Run the listener on this (main) thread until SIGTERM or SIGINT, then shut down gracefully."""

    async def main() -> None:
        await listener.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if ready is not None:
            ready(listener)
        await stop.wait()
        log.info("SMTP capture listener: shutting down")
        await listener.stop()

    asyncio.run(main())


class ListenerThread:
    """The listener on its own event loop in a daemon thread (embedded mode, tests)."""

    def __init__(self, listener: CaptureListener) -> None:
        self.listener = listener
        self.loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="mailwarden-smtp", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.listener.start())
        except BaseException as e:
            self._error = e
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()

    def start(self) -> ListenerThread:
        self.thread.start()
        self._started.wait(30)
        if self._error is not None:
            raise self._error
        return self

    @property
    def port(self) -> int:
        return self.listener.port

    def stop(self, grace: float | None = None) -> None:
        if not self.thread.is_alive():
            return
        fut = asyncio.run_coroutine_threadsafe(self.listener.stop(grace), self.loop)
        fut.result(timeout=(grace or 30) + 30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def start_listener_thread(listener: CaptureListener | None = None, **kwargs: Any) -> ListenerThread:
    """Start a listener in a background thread; returns once it is bound (see `.port`)."""
    return ListenerThread(listener or CaptureListener(**kwargs)).start()
