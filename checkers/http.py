"""HTTP_GET and SSL_GET: every `url` must answer with an accepted status, and match its
`digest` (MD5 of the body) and `regex` when given.

A lean client, because thousands of these run every second: one non-blocking socket per
GET driven by loop callbacks (no task, no transport, no stream), the response parsed by
httptools (llhttp), TLS through an `ssl.SSLObject` over memory BIOs on the same socket.
Like keepalived: one connection per GET, redirects not followed, the request is
keepalived's (`User-Agent: KeepAliveClient`, `Host` the virtualhost or address:port,
`Connection: close` for http_protocol 1.0C and 1.1), a body without a length runs to the
close of the connection, and a body shorter than its Content-Length is logged, not a
failure by itself (its digest still has to match). Chunked bodies are decoded (keepalived
would hash the chunk framing).
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import re
import socket
import ssl
from collections.abc import Callable
from typing import Any

import httptools

from conf.model import Checker, SslConfig, Url

from .poller import IN, OUT, Poller, poller
from .probes import UP, Outcome, connect, open_socket

log = logging.getLogger("director.checkers")

MAX_HEADER = 64 * 1024  # this much received without the end of the header: a failure
MAX_KEPT = 16 * 1024 * 1024  # body bytes kept for a regex; the rest is not searched
RECV = 65536
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*(\d+)[ \t]*\r\n", re.I)

_contexts: dict[tuple[str | None, str | None, str | None], ssl.SSLContext] = {}
_ssl_config: SslConfig | None = None
_mismatch: dict[tuple[str, str], int] = {}  # (server, path) -> last logged length gap


def configure(ssl_block: SslConfig | None) -> None:
    """The config's global `SSL { ca; certificate; key; password }` block."""
    global _ssl_config
    _ssl_config = ssl_block
    _contexts.clear()


def _context() -> ssl.SSLContext:
    c = _ssl_config
    key = (c.ca, c.certificate, c.key) if c else (None, None, None)
    if key not in _contexts:
        ctx = ssl.create_default_context(cafile=c.ca) if c and c.ca else \
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False  # the real server is reached by address
        if not (c and c.ca):  # keepalived checks liveness, not identity, without a CA
            ctx.verify_mode = ssl.CERT_NONE
        if c and c.certificate:
            ctx.load_cert_chain(c.certificate, c.key, c.password)
        _contexts[key] = ctx
    return _contexts[key]


def status_ok(url: Url, status: int) -> bool:
    if not url.status_code:
        return 200 <= status <= 299
    return any(lo <= status <= hi for lo, hi in url.status_code)


def body_problem(url: Url, body: bytes) -> str | None:
    if url.digest is not None:
        got = hashlib.md5(body).hexdigest()
        if got != url.digest.lower():
            return f"MD5 digest mismatch (got {got})"
    return regex_problem(url, body)


def regex_problem(url: Url, body: bytes) -> str | None:
    if url.regex is not None:
        found = re.search(url.regex.encode(), body) is not None
        if found == url.regex_no_match:
            return "regex " + ("matched" if found else "did not match")
    return None


def request(ck: Checker, url: Url) -> bytes:
    """keepalived's GET: its request line, User-Agent, Connection and Host lines."""
    vhost = url.virtualhost or ck.virtualhost
    if vhost:
        host = vhost
    else:
        ip = ck.connect_ip or ""
        host = f"[{ip}]:{ck.connect_port}" if ":" in ip else f"{ip}:{ck.connect_port}"
    minor = 1 if ck.http_protocol == "1.1" else 0
    close = "Connection: close\r\n" if ck.http_protocol in ("1.0C", "1.1") else ""
    return (f"GET {url.path} HTTP/1.{minor}\r\nUser-Agent: KeepAliveClient\r\n{close}"
            f"Host: {host}\r\n\r\n").encode("latin-1")


def sni_name(ck: Checker, url: Url) -> str | None:
    if ck.type != "SSL_GET" or not ck.enable_sni:
        return None
    return ck.sni_name or url.virtualhost or ck.virtualhost


class Get:
    """One GET on its own connection; `done(get)` is called once, with `error` set (the
    reason) or with `status`, `received` and the digest or body the caller asked for.
    `timeout` None: the owner bounds it, calling `expire` (no loop timer per GET)."""

    __slots__ = ("sock", "fd", "done", "parser", "request", "pending", "tls", "inbio",
                 "outbio", "timer", "error", "status", "header", "received", "cut",
                 "header_done", "complete", "md5", "kept", "keep", "connecting", "events",
                 "poller", "handshaking", "closed")

    def __init__(self, ck: Checker, url: Url, timeout: float | None,
                 done: Callable[[Get], None], digest: bool = False, keep: bool = False,
                 req: bytes | None = None, watcher: Poller | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.done = done
        self.error: str | None = None
        self.status = 0
        self.received = 0
        self.header = b""  # the response's bytes until the end of its header
        self.header_done = self.complete = self.closed = False
        self.cut = False  # the body ended with the connection, before its end
        self.connecting = True
        self.handshaking = False
        self.events = 0
        self.poller = watcher or poller()
        self.md5 = hashlib.md5() if digest else None
        self.keep = keep
        self.kept: list[bytes] = []
        self.request = req or request(ck, url)
        self.pending = b""
        self.parser: Any = httptools.HttpResponseParser(self)  # None once finished
        self.tls: ssl.SSLObject | None = None
        self.timer: asyncio.TimerHandle | None = None
        try:
            self.sock: socket.socket | None = open_socket(ck, socket.SOCK_STREAM, fast=True)
        except OSError as e:
            self.sock = None
            self.fd = -1
            self.error = f"socket: {e.strerror or e}"
            loop.call_soon(self._finish)
            return
        self.fd = self.sock.fileno()
        if ck.type == "SSL_GET":
            try:
                self.inbio, self.outbio = ssl.MemoryBIO(), ssl.MemoryBIO()
                self.tls = _context().wrap_bio(self.inbio, self.outbio,
                                               server_hostname=sni_name(ck, url))
            except (ssl.SSLError, OSError, ValueError) as e:
                self._fail(f"TLS setup: {e}")
                return
        if timeout is not None:
            self.timer = loop.call_later(timeout, self.expire)
        rc = connect(self.sock, ck)
        if rc == 0:
            self._connected()
        elif rc == errno.EINPROGRESS:
            self._watch(OUT)
        else:
            self._fail(os.strerror(rc))

    # -- the socket ----------------------------------------------------------------
    def _watch(self, events: int) -> None:
        if events != self.events:
            if self.events:
                self.poller.change(self.fd, events)
            else:
                self.poller.watch(self.fd, events, Get._event, self)
            self.events = events

    def _event(self, events: int) -> None:
        try:
            self._step(events)
        except Exception as e:  # a bug here must fail this check, not leave it hanging
            log.error("HTTP check (%s): internal error %s: %s",
                      self.request.split(b"\r\n")[0].decode("latin-1"),
                      type(e).__name__, e)
            self._fail(f"internal error {type(e).__name__}: {e}")

    def _step(self, events: int) -> None:
        if self.connecting:
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)  # type: ignore[union-attr]
            if err:
                self._fail(os.strerror(err))
                return
            self._connected()
            return
        if events & OUT:
            self._flush()
        if events & ~OUT and self.sock is not None:
            self._readable()

    def _connected(self) -> None:
        self.connecting = False
        if self.tls is not None:
            self.handshaking = True
            self._handshake()
        else:
            self._send(self.request)

    def _send(self, data: bytes) -> None:
        self.pending += data
        self._flush()

    def _flush(self) -> None:
        if self.sock is None:
            return
        if self.pending:
            try:
                n = self.sock.send(self.pending)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError as e:
                self._fail(f"send: {e.strerror or e}")
                return
            self.pending = self.pending[n:]
        self._watch(IN | OUT if self.pending else IN)

    def _readable(self) -> None:
        if self.sock is None:
            return
        try:
            data = self.sock.recv(RECV)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self._fail(f"read: {e.strerror or e}")
            return
        if self.tls is None:
            if data:
                self._feed(data)
            else:
                self._eof()
            return
        if data:
            self.inbio.write(data)
        else:
            self.inbio.write_eof()
        if self.handshaking:
            self._handshake()
        if not self.handshaking and self.sock is not None:
            self._tls_read()

    # -- TLS -------------------------------------------------------------------------
    def _tls_out(self) -> None:
        data = self.outbio.read()
        if data:
            self._send(data)

    def _handshake(self) -> None:
        assert self.tls is not None
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            self._tls_out()
            return
        except ssl.SSLEOFError:
            self._fail("TLS handshake: connection closed by the server")
            return
        except ssl.SSLCertVerificationError as e:
            self._fail(f"TLS handshake: certificate verify failed: {e.verify_message}")
            return
        except (ssl.SSLError, OSError) as e:
            self._fail(f"TLS handshake: {getattr(e, 'reason', None) or e}")
            return
        self.handshaking = False
        self.tls.write(self.request)
        self._tls_out()

    def _tls_read(self) -> None:
        assert self.tls is not None
        while self.sock is not None:
            try:
                data = self.tls.read(RECV)
            except ssl.SSLWantReadError:
                self._tls_out()  # a renegotiation or session ticket may want to answer
                return
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self._eof()  # with or without close_notify, as keepalived
                return
            except ssl.SSLError as e:
                self._fail(f"TLS: {e}")
                return
            if not data:
                self._eof()
                return
            self._feed(data)

    # -- the response ----------------------------------------------------------------
    def _feed(self, data: bytes) -> None:
        if not self.header_done:
            self.header += data  # kept for Content-Length, read only when the body is cut
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(f"malformed response: {e}")
            return
        if self.complete:
            self._finish()
        elif not self.header_done and len(self.header) > MAX_HEADER:
            self._fail(f"response header longer than {MAX_HEADER} bytes")

    def _eof(self) -> None:
        if not self.header_done:
            self._fail("connection closed before a complete response header"
                       if self.header else "no data received")
            return
        self.complete = self.cut = True  # a body without a length ends here; a short one too
        self._finish()

    def length(self) -> int:
        """The response's Content-Length, -1 when absent (read from the header only when
        needed: a callback per header line would cost every check)."""
        m = _CONTENT_LENGTH.search(self.header.split(b"\r\n\r\n", 1)[0] + b"\r\n")
        return int(m.group(1)) if m else -1

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self.header_done = True
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if not body:
            return
        self.received += len(body)
        if self.md5 is not None:
            self.md5.update(body)
        if self.keep and self.received <= MAX_KEPT:
            self.kept.append(body)

    def on_message_complete(self) -> None:
        self.complete = True

    # -- the end ---------------------------------------------------------------------
    def expire(self) -> None:
        self._fail("timeout")

    def _fail(self, reason: str) -> None:
        if self.error is None and not self.closed:
            self.error = reason
        self._finish()

    def _finish(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.parser = None  # it refers back to this GET: freed now, not by a collection
        if self.timer is not None:
            self.timer.cancel()
        if self.sock is not None:
            if self.events:
                self.poller.forget(self.fd)
            self.sock.close()
            self.sock = None
        self.done(self)

    def abort(self) -> None:
        self.done = _ignore
        self._fail("cancelled")

    def body(self) -> bytes:
        return b"".join(self.kept)


def _ignore(get: Get) -> None:
    pass


def _verdict(url: Url, get: Get, ck: Checker) -> str | None:
    """Why this url's GET fails, or None."""
    if get.error is not None:
        return get.error
    if not status_ok(url, get.status):
        return f"status code {get.status}"
    # a complete body has its Content-Length by definition: only a cut one can differ
    length = get.length() if get.cut else -1
    gap = length - get.received if length >= 0 else 0
    if gap or _mismatch:
        key = (f"{ck.connect_ip}:{ck.connect_port}", url.path)
        if not gap:
            _mismatch.pop(key, None)
        elif _mismatch.get(key) != gap:  # logged the first time this gap is seen
            log.info("HTTP check of %s url %s: Content-Length (%d) does not match the "
                     "bytes received (%d)", key[0], url.path, length, get.received)
            _mismatch[key] = gap
    if url.digest is not None and get.md5 is not None:
        got = get.md5.hexdigest()
        if got != url.digest.lower():
            return f"MD5 digest mismatch (got {got})"
    if url.regex is not None:
        return regex_problem(url, get.body())
    return None


class HttpCheck:
    """The urls of one checker, one GET after another; the first failure ends it with
    `done(arg, outcome)` (a function and its argument: no closure per check). Made once
    per checker, started for each check. `arm(arg, seconds)`, when given, is called as
    each GET starts: its owner calls `expire` after `seconds` unless the check ended
    (one scheduler for thousands of checks); without it each GET has a loop timer."""

    __slots__ = ("ck", "timeout", "done", "arg", "arm", "urls", "requests", "i", "get",
                 "ended", "poller")

    def __init__(self, ck: Checker, timeout: float, done: Callable[[Any, Outcome], None],
                 arg: Any, arm: Callable[[Any, float], None] | None = None) -> None:
        self.ck, self.timeout, self.done, self.arg, self.arm = ck, timeout, done, arg, arm
        self.urls = ck.urls or (Url(),)
        self.requests = [request(ck, url) for url in self.urls]
        self.i = 0
        self.get: Get | None = None
        self.ended = False
        self.poller = poller()

    def start(self) -> None:
        """Separate from __init__: the verdict may come at once (a refused connect)."""
        self.i = 0
        self.ended = False
        self._next()

    def _next(self) -> None:
        url = self.urls[self.i]
        if self.arm is not None:
            self.arm(self.arg, self.timeout)
        get = Get(self.ck, url, None if self.arm else self.timeout, self._got,
                  url.digest is not None, url.regex is not None, self.requests[self.i],
                  self.poller)
        if not get.closed:  # else it ended within the call (refused), and _got ran
            self.get = get

    def expire(self) -> None:
        """The GET in progress is out of time."""
        if self.get is not None and not self.ended:
            self.get.expire()

    def _got(self, get: Get) -> None:
        self.get = None  # kept, this checker would hold its last GET until the next
        url = self.urls[self.i]
        why = _verdict(url, get, self.ck)
        if why is not None:
            self._end(Outcome(False, f"{why} on url {url.path}"))
        elif self.i + 1 < len(self.urls):
            self.i += 1
            self._next()
        else:
            self._end(UP)

    def _end(self, outcome: Outcome) -> None:
        if not self.ended:
            self.ended = True
            self.done(self.arg, outcome)

    def cancel(self) -> None:
        """Stop now without a verdict (the engine stops): the connection is closed."""
        self.ended = True
        if self.get is not None:
            self.get.abort()


def _set_result(fut: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not fut.done():
        fut.set_result(outcome)


def http_probe(ck: Checker, timeout: float) -> asyncio.Future[Outcome]:
    """A future of the checker's verdict; `timeout` bounds each url's GET."""
    fut: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
    HttpCheck(ck, timeout, _set_result, fut).start()
    return fut


async def fetch(ck: Checker, url: Url, timeout: float) -> Get:
    """One GET with the MD5 of its body (`director genhash`); `error` says why it failed."""
    fut: asyncio.Future[Get] = asyncio.get_running_loop().create_future()
    Get(ck, url, timeout, fut.set_result, digest=True)
    return await fut
