"""HTTP_GET and SSL_GET with aiohttp: every `url` must answer with an accepted status,
and match its `digest` (MD5 of the body) and `regex` when given.

One client session serves every checker of the process; connections are not kept
(keepalived opens one per check, and a kept connection would hide a dead listener).
"""

from __future__ import annotations

import hashlib
import re
import ssl
from typing import Any

import aiohttp

from conf.model import Checker, SslConfig, Url

from .probes import Outcome

_sessions: dict[tuple[tuple[str, int] | None, str], aiohttp.ClientSession] = {}
_contexts: dict[tuple[str | None, str | None, str | None], ssl.SSLContext] = {}
_ssl_config: SslConfig | None = None


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


def session(local: tuple[str, int] | None = None, protocol: str = "1.0"
            ) -> aiohttp.ClientSession:
    """One session per local address (`bindto`/`bind_port`: aiohttp binds per connector)
    and HTTP version (`http_protocol`: aiohttp sets it per session)."""
    s = _sessions.get((local, protocol))
    if s is None or s.closed:
        conn = aiohttp.TCPConnector(limit=0, force_close=True, use_dns_cache=False,
                                    local_addr=local)
        version = aiohttp.HttpVersion11 if protocol.startswith("1.1") \
            else aiohttp.HttpVersion10
        s = _sessions[(local, protocol)] = aiohttp.ClientSession(
            connector=conn, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
            version=version)
    return s


async def close() -> None:
    for s in _sessions.values():
        await s.close()
    _sessions.clear()


def status_ok(url: Url, status: int) -> bool:
    if not url.status_code:
        return 200 <= status <= 299
    return any(lo <= status <= hi for lo, hi in url.status_code)


def body_problem(url: Url, body: bytes) -> str | None:
    if url.digest is not None:
        got = hashlib.md5(body).hexdigest()
        if got != url.digest.lower():
            return f"MD5 digest mismatch (got {got})"
    if url.regex is not None:
        found = re.search(url.regex.encode(), body) is not None
        if found == url.regex_no_match:
            return "regex " + ("matched" if found else "did not match")
    return None


def _target(ck: Checker, url: Url) -> tuple[str, dict[str, str], str | None]:
    tls = ck.type == "SSL_GET"
    host = ck.connect_ip or ""
    hostport = f"[{host}]" if ":" in host else host
    path = url.path if url.path.startswith("/") else "/" + url.path
    link = f"{'https' if tls else 'http'}://{hostport}:{ck.connect_port}{path}"
    vhost = url.virtualhost or ck.virtualhost
    headers = {"User-Agent": "KeepAliveClient", "Connection": "close"}
    if vhost:
        headers["Host"] = vhost
    sni = (ck.sni_name or vhost) if (tls and ck.enable_sni) else None
    return link, headers, sni


async def fetch(ck: Checker, url: Url, timeout: float) -> tuple[int, bytes]:
    link, headers, sni = _target(ck, url)
    kw: dict[str, Any] = {}
    if ck.type == "SSL_GET":
        kw["ssl"] = _context()
        if sni:
            kw["server_hostname"] = sni
    local = (ck.bindto or "0.0.0.0", ck.bind_port or 0) if ck.bindto or ck.bind_port else None
    limit = aiohttp.ClientTimeout(total=timeout)
    async with session(local, ck.http_protocol).get(
            link, headers=headers, allow_redirects=False, timeout=limit, **kw) as resp:
        return resp.status, await resp.read()


async def http_probe(ck: Checker, timeout: float) -> Outcome:
    for url in ck.urls or (Url(),):
        try:
            status, body = await fetch(ck, url, timeout)
        except TimeoutError:
            return Outcome(False, f"timeout on url {url.path}")
        except (aiohttp.ClientError, OSError, ssl.SSLError) as e:
            return Outcome(False, f"url {url.path}: {type(e).__name__}: {e}")
        if not status_ok(url, status):
            return Outcome(False, f"status code {status} on url {url.path}")
        why = body_problem(url, body)
        if why:
            return Outcome(False, f"{why} on url {url.path}")
    return Outcome(True)
