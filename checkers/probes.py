"""One probe per checker type (all but HTTP, in http.py), found through the registry
`PROBES` (type name -> probe). Each returns a future of an `Outcome`; TCP_CHECK, by far
the most common, is also two plain steps (`tcp_open`, `tcp_result`) that the engine
drives itself, so that thousands of them cost little.
"""

from __future__ import annotations

import _socket
import asyncio
import errno
import os
import random
import socket
import struct
import time
from collections.abc import Awaitable, Callable

import attrs

from conf.model import Checker
from daemonlib.checksum import checksum
from daemonlib.scripts import run_script
from daemonlib.trackfile import file_contribution, read_file_value

from .poller import OUT, poller

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
SO_MARK = getattr(socket, "SO_MARK", 36)


@attrs.frozen
class Outcome:
    ok: bool
    reason: str = ""
    weight: int | None = None  # a dynamic weight (MISC_CHECK misc_dynamic, FILE_CHECK)


def family_of(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def open_socket(ck: Checker, kind: int, fast: bool = False) -> socket.socket:
    """A non-blocking socket with the checker's bind_if, fwmark and bindto/bind_port;
    `fast`: the C socket type without the Python wrapper (for the busy probes, which use
    only its C methods)."""
    family = family_of(ck.connect_ip or "")
    if fast:
        s = _socket.socket(family, kind | socket.SOCK_NONBLOCK)
    else:
        s = socket.socket(family, kind)
        s.setblocking(False)
    try:
        if ck.bind_if:
            s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, ck.bind_if.encode())
        if ck.fwmark:
            s.setsockopt(socket.SOL_SOCKET, SO_MARK, ck.fwmark)
        if ck.bindto or ck.bind_port:
            s.bind((ck.bindto or ("::" if family == socket.AF_INET6 else "0.0.0.0"),
                    ck.bind_port or 0))
    except OSError:
        s.close()
        raise
    return s  # type: ignore[return-value]


UP = Outcome(True)
TCP_INFO = getattr(socket, "TCP_INFO", 11)
# tcp_info's first byte is the connection's state (linux/tcp_states.h)
TCP_ESTABLISHED, TCP_SYN_SENT = 1, 2


def tcp_open(ck: Checker) -> tuple[socket.socket | None, Outcome | None]:
    """Start TCP_CHECK's connect: (socket, None) while it is in progress (wait until the
    socket is writable, then `tcp_result`), or (None, outcome) when it ended at once."""
    try:
        s = open_socket(ck, socket.SOCK_STREAM, fast=True)
    except OSError as e:
        return None, Outcome(False, f"socket: {e.strerror or e}")
    rc = connect(s, ck)
    if rc == errno.EINPROGRESS:
        return s, None
    s.close()
    return None, UP if rc == 0 else Outcome(False, os.strerror(rc))


def connect(s: socket.socket, ck: Checker) -> int:
    """Start the connect of a non-blocking socket: 0 when connected, EINPROGRESS while in
    progress (wait until writable), else the error. A server on this host often answers
    within the call (the kernel runs both sides of the handshake, or the refusal, in it):
    that verdict comes at once, without a wait for writability."""
    rc = s.connect_ex((ck.connect_ip, ck.connect_port))
    if rc != errno.EINPROGRESS and rc != errno.EAGAIN:
        return rc
    state = s.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 1)[0]
    if state == TCP_ESTABLISHED:
        return 0
    if state == TCP_SYN_SENT:
        return errno.EINPROGRESS
    return s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)


def tcp_result(s: socket.socket) -> Outcome:
    """The connect's verdict once the socket is writable; the socket is closed."""
    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    s.close()
    return UP if err == 0 else Outcome(False, os.strerror(err))


def tcp_probe(ck: Checker, timeout: float) -> asyncio.Future[Outcome]:
    """Connect and close; refused, unreachable or `timeout` is a failure. (The engine
    runs TCP_CHECK itself with the same two steps, without a future.)"""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Outcome] = loop.create_future()
    s, outcome = tcp_open(ck)
    if s is None:
        assert outcome is not None  # tcp_open gives one or the other
        fut.set_result(outcome)
        return fut
    p = poller()
    fd = s.fileno()

    def writable(_arg: None, _events: int) -> None:
        timer.cancel()
        p.forget(fd)
        outcome = tcp_result(s)
        if not fut.done():  # not cancelled meanwhile
            fut.set_result(outcome)

    def expired() -> None:
        p.forget(fd)
        s.close()
        if not fut.done():
            fut.set_result(Outcome(False, "timeout"))

    timer = loop.call_later(timeout, expired)
    p.watch(fd, OUT, writable, None)
    return fut


async def _connect(ck: Checker, timeout: float) -> tuple[asyncio.StreamReader,
                                                         asyncio.StreamWriter]:
    s = open_socket(ck, socket.SOCK_STREAM)
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.sock_connect(s, (ck.connect_ip, ck.connect_port)), timeout)
    except BaseException:
        s.close()
        raise
    return await asyncio.open_connection(sock=s)


async def smtp_probe(ck: Checker, timeout: float) -> Outcome:
    """A 220 greeting, HELO answered with 250, then QUIT (keepalived's SMTP_CHECK)."""
    async def talk() -> Outcome:
        reader, writer = await _connect(ck, timeout)
        try:
            async def reply() -> int:
                while True:  # multi-line replies: "250-..." until "250 ..."
                    line = await reader.readline()
                    if not line:
                        return 0
                    if len(line) < 4 or line[3:4] != b"-":
                        return int(line[:3]) if line[:3].isdigit() else 0
            code = await reply()
            if code != 220:
                return Outcome(False, f"greeting {code or 'missing'}")
            writer.write(f"HELO {ck.helo_name}\r\n".encode())
            code = await reply()
            if code != 250:
                return Outcome(False, f"HELO answered {code or 'nothing'}")
            writer.write(b"QUIT\r\n")
            return Outcome(True)
        finally:
            writer.close()
    try:
        return await asyncio.wait_for(talk(), timeout)
    except TimeoutError:
        return Outcome(False, "timeout")
    except OSError as e:
        return Outcome(False, e.strerror or str(e))


DNS_TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16,
             "AAAA": 28, "RRSIG": 46, "DNSKEY": 48}


def dns_query(qid: int, name: str, qtype: str) -> bytes:
    labels = [x for x in name.strip(".").split(".") if x]
    qname = b"".join(bytes([len(x)]) + x.encode("idna") for x in labels) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + struct.pack(
        "!HH", DNS_TYPES.get(qtype.upper(), 6), 1)


def dns_answer_ok(qid: int, data: bytes) -> str | None:
    """None if `data` answers query `qid` with NOERROR and at least one answer."""
    if len(data) < 12:
        return "short DNS reply"
    rid, flags, _qd, an = struct.unpack("!HHHH", data[:8])
    if rid != qid or not flags & 0x8000:
        return "not an answer to our query"
    if flags & 0x000F:
        return f"rcode {flags & 0x000F}"
    if an == 0:
        return "no answer records"
    return None


class _Datagram(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()
        self.error: str | None = None

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.replies.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        self.error = getattr(exc, "strerror", None) or str(exc)
        self.replies.put_nowait(b"")


async def _udp_exchange(ck: Checker, payload: bytes, timeout: float,
                        want_reply: bool) -> tuple[bytes | None, str]:
    loop = asyncio.get_running_loop()
    s = open_socket(ck, socket.SOCK_DGRAM)
    s.connect((ck.connect_ip, ck.connect_port))
    transport, proto = await loop.create_datagram_endpoint(_Datagram, sock=s)
    try:
        transport.sendto(payload)
        try:
            data = await asyncio.wait_for(proto.replies.get(), timeout)
        except TimeoutError:
            # silence is a failure only when a reply is wanted; otherwise only an ICMP
            # port unreachable (error_received) is
            return None, "timeout" if want_reply else ""
        return (None, proto.error) if proto.error else (data, "")
    finally:
        transport.close()


async def udp_probe(ck: Checker, timeout: float) -> Outcome:
    want = ck.require_reply is not None or ck.min_reply_length is not None \
        or ck.max_reply_length is not None
    try:
        data, err = await _udp_exchange(ck, ck.payload or b"", timeout, want)
    except OSError as e:
        return Outcome(False, e.strerror or str(e))
    if err:
        return Outcome(False, err)
    if not want:
        return Outcome(True)
    assert data is not None
    if ck.min_reply_length is not None and len(data) < ck.min_reply_length:
        return Outcome(False, f"reply of {len(data)} bytes, fewer than {ck.min_reply_length}")
    if ck.max_reply_length is not None and len(data) > ck.max_reply_length:
        return Outcome(False, f"reply of {len(data)} bytes, more than {ck.max_reply_length}")
    if ck.require_reply is not None and not _reply_matches(data, ck.require_reply,
                                                           ck.require_reply_mask):
        return Outcome(False, "reply does not match require_reply")
    return Outcome(True)


async def dns_probe(ck: Checker, timeout: float) -> Outcome:
    qid = random.getrandbits(16)
    try:
        data, err = await _udp_exchange(ck, dns_query(qid, ck.dns_name, ck.dns_type), timeout,
                                        True)
    except OSError as e:
        return Outcome(False, e.strerror or str(e))
    if err or data is None:
        return Outcome(False, err or "no reply")
    why = dns_answer_ok(qid, data)
    return Outcome(why is None, why or "")


async def ping_probe(ck: Checker, timeout: float) -> Outcome:
    """One ICMP / ICMPv6 echo; the reply must carry our identifier and sequence."""
    address = ck.connect_ip or ""
    v6 = family_of(address) == socket.AF_INET6
    proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    try:
        s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW, proto)
    except OSError as e:
        return Outcome(False, f"ICMP socket: {e.strerror}")
    s.setblocking(False)
    ident, seq = random.getrandbits(16), random.getrandbits(16)
    body = struct.pack("!d", time.time())
    kind, reply_kind = (128, 129) if v6 else (8, 0)
    head = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    packet = head if v6 else head[:2] + struct.pack("!H", checksum(head + body)) + head[4:]
    loop = asyncio.get_running_loop()
    try:
        if ck.bind_if:
            s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, ck.bind_if.encode())
        await loop.sock_sendto(s, packet + body, (address, 0))
        end = loop.time() + timeout
        while True:
            left = end - loop.time()
            if left <= 0:
                return Outcome(False, "timeout")
            data, src = await asyncio.wait_for(loop.sock_recvfrom(s, 2048), left)
            icmp = data if v6 else data[(data[0] & 0x0F) * 4:]
            if src[0].split("%")[0] != address or len(icmp) < 8:
                continue
            rtype, _code, _sum, rid, rseq = struct.unpack("!BBHHH", icmp[:8])
            if rtype == reply_kind and (rid, rseq) == (ident, seq):
                return Outcome(True)
    except TimeoutError:
        return Outcome(False, "timeout")
    except OSError as e:
        return Outcome(False, e.strerror or str(e))
    finally:
        s.close()


async def misc_probe(ck: Checker, timeout: float) -> Outcome:
    """misc_path's exit code: 0 up, 1 down; with misc_dynamic 2..255 up at weight code-2."""
    if ck.misc_path is None:
        return Outcome(False, "no misc_path")
    # as whom, and whether at all: the script policy decided at config load
    rc = await run_script(ck.misc_path, timeout=ck.misc_timeout or timeout, what="MISC_CHECK",
                          quiet=True)
    if rc is None:
        return Outcome(False, "script failed to run or timed out")
    if rc == 0:
        return Outcome(True)
    if rc == 1 or not ck.misc_dynamic:
        return Outcome(False, f"exit status {rc}")
    return Outcome(True, weight=rc - 2)


def file_probe(ck: Checker, path: str | None, weight: int, reverse: bool,
               base_weight: int) -> Outcome:
    """FILE_CHECK: the file's number scales `weight` into the real server's weight;
    with weight 0 any non-zero value means down; a weight pushed to -254 or below too."""
    value = read_file_value(path)
    delta, fault = file_contribution(value, weight, reverse)  # track_file's arithmetic
    if fault:
        return Outcome(False, f"file value {value}")
    return Outcome(True, weight=None if weight == 0 else max(0, base_weight + delta))


Probe = Callable[[Checker, float], Awaitable[Outcome]]


def _http(ck: Checker, timeout: float) -> Awaitable[Outcome]:
    from .http import http_probe  # loaded only where HTTP checkers exist

    return http_probe(ck, timeout)


# checker type -> probe(checker, timeout); FILE_CHECK needs no I/O of its own and is
# computed by the engine (file_probe)
PROBES: dict[str, Probe] = {
    "TCP_CHECK": tcp_probe,
    "HTTP_GET": _http,
    "SSL_GET": _http,
    "SMTP_CHECK": smtp_probe,
    "DNS_CHECK": dns_probe,
    "UDP_CHECK": udp_probe,
    "PING_CHECK": ping_probe,
    "MISC_CHECK": misc_probe,
}


def probe(ck: Checker, timeout: float) -> Awaitable[Outcome]:
    found = PROBES.get(ck.type)
    if found is None:
        raise ValueError(f"no probe for {ck.type}")
    return found(ck, timeout)


def _reply_matches(data: bytes, want: bytes, mask: bytes | None) -> bool:
    """The reply starts with `want`, X nibbles (mask bits) matching anything."""
    if mask is None:
        return data.startswith(want)
    return len(data) >= len(want) and all(
        (d | m) == (w | m) for d, w, m in zip(data, want, mask, strict=False))
