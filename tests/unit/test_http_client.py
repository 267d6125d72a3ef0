"""The HTTP_GET client against a local asyncio server that answers each request with a
scripted byte stream: what keepalived sends, chunked and length-less bodies, early close,
slow and malformed answers. Each failure must be an Outcome with a reason, never an
exception."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable

import pytest

from checkers import http
from checkers.engine import Engine, Job
from checkers.probes import probe
from checkers.state import RetryState
from conf.model import Checker, Url

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _serve(script: Script, go: Callable[[int], Awaitable[object]]) -> object:
    server = await asyncio.start_server(script, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await go(port)
    finally:
        server.close()


def answer(*parts: bytes, delay: float = 0.0, close: bool = True) -> Script:
    """Read the request header, send `parts` (pausing `delay` between them), then close
    (or hang when `close` is false)."""
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            seen.append(await reader.readuntil(b"\r\n\r\n"))
        except (asyncio.IncompleteReadError, ConnectionError):
            return  # a TCP_CHECK: connect and close
        for i, part in enumerate(parts):
            if i and delay:
                await asyncio.sleep(delay)
            writer.write(part)
            await writer.drain()
        if not close:
            await asyncio.sleep(30)
        writer.close()
    seen: list[bytes] = []
    script.seen = seen  # type: ignore[attr-defined]
    return script


def check(script: Script, *urls: Url, timeout: float = 3.0, **kw: object):
    async def go(port: int):
        ck = Checker(type="HTTP_GET", connect_ip="127.0.0.1", connect_port=port,
                     urls=urls or (Url(),), **kw)  # type: ignore[arg-type]
        return await probe(ck, timeout)
    return asyncio.run(_serve(script, go))


OK = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"


def test_request_is_keepalived_s():
    s = answer(OK + b"Content-Length: 2\r\n\r\nok")
    assert check(s, Url(path="/health?x=1")).ok
    req = s.seen[0].decode()  # type: ignore[attr-defined]
    line, *headers = req.split("\r\n")
    assert line == "GET /health?x=1 HTTP/1.0"
    assert headers[0] == "User-Agent: KeepAliveClient"
    assert headers[1].startswith("Host: 127.0.0.1:") and "Connection" not in req
    port = int(headers[1].rsplit(":", 1)[1])
    assert port > 0
    for proto, want_line, close in (("1.0C", "HTTP/1.0", True), ("1.1", "HTTP/1.1", True)):
        s = answer(OK + b"Content-Length: 2\r\n\r\nok")
        assert check(s, http_protocol=proto).ok
        req = s.seen[0].decode()  # type: ignore[attr-defined]
        assert req.startswith(f"GET / {want_line}\r\n")
        assert ("Connection: close\r\n" in req) == close
    s = answer(OK + b"\r\nok")
    assert check(s, Url(virtualhost="www.example"), virtualhost="other").ok
    assert "Host: www.example\r\n" in s.seen[0].decode()  # type: ignore[attr-defined]


def test_ipv6_host_header_is_bracketed():
    ck = Checker(type="HTTP_GET", connect_ip="fd00::1", connect_port=8080)
    assert b"Host: [fd00::1]:8080\r\n" in http.request(ck, Url())


def test_body_without_length_runs_to_the_close():
    body = b"no length here\n" * 1000
    s = answer(OK + b"\r\n", body[:7000], body[7000:], delay=0.05)
    assert check(s, Url(digest=hashlib.md5(body).hexdigest())).ok
    assert not check(answer(OK + b"\r\n", body[:7000], body[7000:], delay=0.05),
                     Url(digest=hashlib.md5(body[:7000]).hexdigest())).ok


def test_chunked_body_is_decoded():
    s = answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
               b"5\r\nhello\r\n", b"6\r\n world\r\n0\r\n\r\n", delay=0.02, close=False)
    # the server does not close: the end of the chunked body ends the check
    t0 = time.monotonic()
    r = check(s, Url(digest=hashlib.md5(b"hello world").hexdigest(), regex="lo wo"),
              http_protocol="1.1")
    assert r.ok, r.reason
    assert time.monotonic() - t0 < 2


def test_content_length_ends_the_body_without_waiting_for_the_close():
    s = answer(OK + b"Content-Length: 5\r\n\r\nhello", close=False)
    r = check(s, Url(digest=hashlib.md5(b"hello").hexdigest()), timeout=5)
    assert r.ok, r.reason


def test_early_close_inside_the_body_is_logged_and_judged_on_what_came(caplog):
    short = OK + b"Content-Length: 100\r\n\r\nhello"
    with caplog.at_level(logging.INFO, "director.checkers"):
        assert check(answer(short)).ok  # keepalived: a length mismatch alone is no failure
    assert "Content-Length (100) does not match the bytes received (5)" in caplog.text
    r = check(answer(short), Url(digest=hashlib.md5(b"x" * 100).hexdigest()))
    assert not r.ok and "digest" in r.reason


def test_early_close_before_the_header_ends_is_a_failure():
    r = check(answer(b"HTTP/1.0 200 OK\r\nContent-"))
    assert not r.ok and "before a complete response header" in r.reason
    r = check(answer())
    assert not r.ok and "no data received" in r.reason


def test_slow_body_times_out():
    s = answer(OK + b"Content-Length: 10\r\n\r\nhel", b"lo", delay=5, close=False)
    t0 = time.monotonic()
    r = check(s, timeout=0.5)
    took = time.monotonic() - t0
    assert not r.ok and r.reason == "timeout on url /"
    assert 0.4 < took < 3


@pytest.mark.parametrize("status_line", [b"garbage\r\n\r\n", b"HTTP/1.1 2000 OK\r\n\r\n",
                                         b"HTTP/1.1 OK\r\n\r\n", b"\x16\x03\x01\x02\x00\r\n"])
def test_malformed_status_line_is_a_failure_with_a_reason(status_line):
    r = check(answer(status_line))
    assert not r.ok and "malformed response" in r.reason


def test_status_lists_and_redirects_not_followed():
    moved = b"HTTP/1.0 301 Moved\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n"
    r = check(answer(moved))
    assert not r.ok and r.reason == "status code 301 on url /"
    assert check(answer(moved), Url(status_code=((300, 399),))).ok
    teapot = b"HTTP/1.0 418 I'm a teapot\r\n\r\n"
    assert check(answer(teapot), Url(status_code=((200, 200), (418, 418)))).ok


def test_a_huge_header_is_a_failure():
    r = check(answer(OK + b"X-Junk: " + b"j" * 200_000 + b"\r\n\r\n"))
    assert not r.ok and "header longer" in r.reason


def test_refused_and_every_url_must_pass():
    async def go(port: int):
        ck = Checker(type="HTTP_GET", connect_ip="127.0.0.1", connect_port=port)
        return await probe(ck, 1.0)

    async def closed_port():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        return await go(port)
    r = asyncio.run(closed_port())
    assert not r.ok and "refused" in r.reason.lower()

    calls = 0

    async def two(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal calls
        req = await reader.readuntil(b"\r\n\r\n")
        calls += 1
        writer.write(OK + b"\r\nok" if b"GET /a " in req else b"HTTP/1.0 500 No\r\n\r\n")
        writer.close()
    r = check(two, Url(path="/a"), Url(path="/b"), Url(path="/c"))
    assert not r.ok and r.reason == "status code 500 on url /b" and calls == 2


def test_genhash_fetch_reports_errors_as_values():
    async def go(port: int):
        ck = Checker(type="HTTP_GET", connect_ip="127.0.0.1", connect_port=port)
        return await http.fetch(ck, Url(), 1.0)
    get = asyncio.run(_serve(answer(OK + b"\r\nbody"), go))
    assert get.error is None and get.status == 200 and get.received == 4
    assert get.md5.hexdigest() == hashlib.md5(b"body").hexdigest()  # type: ignore[union-attr]
    get = asyncio.run(_serve(answer(b"nonsense\r\n\r\n"), go))
    assert get.error and "malformed" in get.error


def test_engine_runs_http_and_tcp_and_stop_closes_what_is_in_flight():
    """The engine's own paths (no future per check): verdicts arrive, and stop() leaves
    no socket watched or open."""
    from checkers.poller import poller

    async def go(port: int) -> tuple[dict, int]:
        verdicts: dict = {}
        eng = Engine(lambda k, up: verdicts.__setitem__(k, up), lambda k, w: None)
        kinds = [("HTTP_GET", port), ("TCP_CHECK", port), ("TCP_CHECK", 1)]
        for i, (kind, p) in enumerate(kinds):
            ck = Checker(type=kind, connect_ip="127.0.0.1", connect_port=p)
            eng.add(Job((0, i, 0), ck, f"rs{i}", RetryState(retry=0, delay_loop=0.05,
                                                             delay_before_retry=0.05,
                                                             up=False), timeout=1))
        eng.start()
        end = asyncio.get_running_loop().time() + 5
        while len(verdicts) < 2 or min(j.checks for j in eng.jobs) < 3:
            assert asyncio.get_running_loop().time() < end, "waiting for verdicts"
            await asyncio.sleep(0.01)
        eng.stop()
        return verdicts, len(poller().handlers) + sum(j.sock is not None or
                                                      j.running is not None
                                                      for j in eng.jobs)
    verdicts, open_after = asyncio.run(_serve(answer(OK + b"\r\nok"), go))
    assert verdicts == {(0, 0, 0): True, (0, 1, 0): True}  # port 1 stays down: no news
    assert open_after == 0


async def three_checks(ck: Checker, timeout: float) -> Job:
    """One checker in an engine (delay_loop 0.05 s, no retry) until it has checked three
    times."""
    eng = Engine(lambda k, up: None, lambda k, w: None)
    job = Job((0, 0, 0), ck, "rs0", RetryState(retry=0, delay_loop=0.05,
                                               delay_before_retry=0.05), timeout=timeout)
    eng.add(job)
    eng.start()
    end = asyncio.get_running_loop().time() + 10
    while job.checks < 3:
        assert asyncio.get_running_loop().time() < end, "waiting for three checks"
        await asyncio.sleep(0.01)
    eng.stop()
    return job


def test_engine_bounds_each_get_with_its_own_deadline():
    """In the engine a GET has no loop timer: the engine's heap expires it. /a answers,
    /b hangs: the check fails on /b's timeout, and checks go on after it."""
    async def hang_on_b(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        req = await reader.readuntil(b"\r\n\r\n")
        if b"GET /a " in req:
            writer.write(OK + b"\r\nok")
        else:
            await asyncio.sleep(30)
        writer.close()

    async def go(port: int) -> Job:
        return await three_checks(Checker(type="HTTP_GET", connect_ip="127.0.0.1",
                                          connect_port=port,
                                          urls=(Url(path="/a"), Url(path="/b"))), 0.3)
    t0 = time.monotonic()
    job = asyncio.run(_serve(hang_on_b, go))
    assert not job.state.up and job.last_reason == "timeout on url /b"
    assert time.monotonic() - t0 > 0.6  # two GETs of /b ran out their 0.3 s


def test_a_finished_get_is_not_kept():
    """A checker's check object lives as long as the checker; the GETs it made must not
    (at 10,000 real servers they would hold ~2 KiB each)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, not listening: every GET is refused
        job = asyncio.run(three_checks(Checker(type="HTTP_GET", connect_ip="127.0.0.1",
                                               connect_port=s.getsockname()[1]), 1))
    assert job.http is not None and job.http.get is None
    assert job.last_reason == "Connection refused on url /"


def test_bindto_and_bind_port_are_the_source_of_the_get():
    import socket

    with socket.socket() as s:  # a free port to bind to
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    peers: list[tuple[str, int]] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername"))
        await reader.readuntil(b"\r\n\r\n")
        writer.write(OK + b"\r\nok")
        writer.close()
    assert check(record, bindto="127.0.0.9", bind_port=port).ok
    assert peers == [("127.0.0.9", port)]
