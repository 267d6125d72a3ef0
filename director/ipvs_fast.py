"""The hot IPVS requests over a raw generic-netlink socket, without pyroute2.

Adding, changing and deleting services and real servers, and dumping the table, are
the messages director sends by the thousand; their layout is fixed (a netlink header,
a genl header, one or two nested attribute sets), so they are packed here with
`struct` and sent many per `sendmsg`. The kernel answers every request with an ACK
carrying its sequence number, so each operation still gets its own verdict. The
encoding is byte-for-byte pyroute2's (a unit test compares them); pyroute2 stays
for the rare messages (timeouts, the sync daemon): see ipvs_netlink.py.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Generator, Sequence

from daemonlib.netlink import (
    CTRL_ATTR_FAMILY_ID,
    CTRL_ATTR_FAMILY_NAME,
    CTRL_CMD_GETFAMILY,
    GENL_ID_CTRL,
    NETLINK_GENERIC,
    NLM_F_ACK,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    attr,
    messages,
)

from .ipvs_table import FLAG_MASK, DestKey, DestSpec, Op, SvcKey, SvcSpec, Table

TYPE_CHECKING = False  # (typing itself is not imported at run time)
if TYPE_CHECKING:
    import asyncio
    from typing import Any, TypeVar

    T = TypeVar("T")
    # an exchange: yields bytes to send or None (wants a datagram), gets the datagram
    Exchange = Generator[bytes | None, memoryview | None, T]

SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
SO_RCVBUFFORCE = 33
GENL_VERSION = 1

# include/uapi/linux/ip_vs.h
CMD_NEW_SERVICE, CMD_SET_SERVICE, CMD_DEL_SERVICE, CMD_GET_SERVICE = 1, 2, 3, 4
CMD_NEW_DEST, CMD_SET_DEST, CMD_DEL_DEST, CMD_GET_DEST = 5, 6, 7, 8
CMD_ATTR_SERVICE, CMD_ATTR_DEST = 1, 2
(SVC_AF, SVC_PROTOCOL, SVC_ADDR, SVC_PORT, SVC_FWMARK, SVC_SCHED_NAME, SVC_FLAGS,
 SVC_TIMEOUT, SVC_NETMASK, SVC_STATS, SVC_PE_NAME, SVC_STATS64) = range(1, 13)
(DEST_ADDR, DEST_PORT, DEST_FWD_METHOD, DEST_WEIGHT, DEST_U_THRESH, DEST_L_THRESH,
 DEST_ACTIVE_CONNS, DEST_INACT_CONNS, DEST_PERSIST_CONNS, DEST_STATS, DEST_ADDR_FAMILY,
 DEST_STATS64, DEST_TUN_TYPE, DEST_TUN_PORT, DEST_TUN_FLAGS) = range(1, 16)
STATS_NAMES = ("conns", "inpkts", "outpkts", "inbytes", "outbytes", "cps", "inpps", "outpps",
               "inbps", "outbps")

FWD = {"NAT": 0, "LOCAL": 1, "TUN": 2, "DR": 3}
FWD_NAME = {v: k for k, v in FWD.items()}
TUN_TYPE = {"ipip": 0, "gue": 1, "gre": 2}
TUN_NAME = {v: k for k, v in TUN_TYPE.items()}
PROTO = {"TCP": socket.IPPROTO_TCP, "UDP": socket.IPPROTO_UDP, "SCTP": 132}
PROTO_NAME = {v: k for k, v in PROTO.items()}
AF = {4: socket.AF_INET, 6: socket.AF_INET6}

CMDS = {
    ("add", False): CMD_NEW_SERVICE, ("edit", False): CMD_SET_SERVICE,
    ("del", False): CMD_DEL_SERVICE, ("add", True): CMD_NEW_DEST,
    ("edit", True): CMD_SET_DEST, ("del", True): CMD_DEL_DEST,
}

_HDR = struct.Struct("=IHHIIBBH")  # nlmsghdr + genlmsghdr
_NLA = struct.Struct("=HH")
_U16 = struct.Struct("=HHH2x")
_U32 = struct.Struct("=HHI")
_DEST_SPEC = struct.Struct("=HHIHHIHHIHHI")  # fwd, weight, u_thresh, l_thresh: one pack
_FLAGS = struct.Struct("=HHII")
NOW_TIMEOUT = 30.0  # a blocking exchange's longest wait for the kernel
BATCH = 512  # requests per sendmsg: their answers (all refused, at worst) must fit the
# receive buffer
# The usual request, an IPv4 real server with its settings (not TUN), as one pack: the
# CMD_ATTR_DEST nest, address family, address, port (big-endian: packed as htons), and
# forward/weight/u_threshold/l_threshold. Thousands of them at start-up.
_DEST4 = struct.Struct("=HH" "HHH2x" "HH4s" "HHH2x" "HHIHHIHHIHHI")
_DEST4_LEN = _DEST4.size - 4


class IpvsError(OSError):
    """The kernel refused one request: `code` is the errno (as pyroute2's NetlinkError)."""

    def __init__(self, code: int) -> None:
        super().__init__(code, os.strerror(code))
        self.code = code


def _be16(kind: int, value: int) -> bytes:
    return _NLA.pack(6, kind) + struct.pack(">H2x", value)


def _v6_netmask(plen: int) -> bytes:
    """The kernel reads an IPv6 service's netmask as a host-order prefix length."""
    return struct.pack("=I", plen)


class Encoder:
    """Requests as bytes. The service part of a key is packed once and kept."""

    def __init__(self, family_id: int) -> None:
        self.family_id = family_id
        self._keys: dict[SvcKey, bytes] = {}
        self._nested: dict[SvcKey, bytes] = {}  # CMD_ATTR_SERVICE around svc_key

    def svc_key(self, key: SvcKey) -> bytes:
        got = self._keys.get(key)
        if got is None:
            af = AF[key.family]
            if key.fwmark:
                got = _U16.pack(6, SVC_AF, af) + _U32.pack(8, SVC_FWMARK, key.fwmark)
            else:
                got = (_U16.pack(6, SVC_AF, af) + _U16.pack(6, SVC_PROTOCOL, PROTO[key.protocol])
                       + attr(SVC_ADDR, socket.inet_pton(af, key.address))
                       + _be16(SVC_PORT, key.port))
            if len(self._keys) < 65536:  # a bound: keys of services long gone stay
                self._keys[key] = got
        return got

    def svc_spec(self, key: SvcKey, spec: SvcSpec) -> bytes:
        netmask = spec.netmask or ("255.255.255.255" if key.family == 4 else "128")
        raw = _v6_netmask(int(netmask)) if key.family == 6 else socket.inet_aton(netmask)
        out = (attr(SVC_SCHED_NAME, spec.scheduler.encode() + b"\0")
               + _FLAGS.pack(12, SVC_FLAGS, spec.flags, FLAG_MASK)
               + _U32.pack(8, SVC_TIMEOUT, spec.timeout)
               + attr(SVC_NETMASK, raw))
        if spec.pe_name:
            out += attr(SVC_PE_NAME, spec.pe_name.encode() + b"\0")
        return out

    def dest(self, dest: DestKey, spec: DestSpec | None) -> bytes:
        fam = socket.AF_INET6 if ":" in dest.address else socket.AF_INET
        out = (_U16.pack(6, DEST_ADDR_FAMILY, fam)
               + attr(DEST_ADDR, socket.inet_pton(fam, dest.address))
               + _be16(DEST_PORT, dest.port))
        if spec is not None:
            out += _DEST_SPEC.pack(8, DEST_FWD_METHOD, FWD[spec.forward], 8, DEST_WEIGHT,
                                   spec.weight, 8, DEST_U_THRESH, spec.u_threshold,
                                   8, DEST_L_THRESH, spec.l_threshold)
            if spec.forward == "TUN" and spec.tun_type:
                out += (attr(DEST_TUN_TYPE, bytes((TUN_TYPE[spec.tun_type],)))
                        + _be16(DEST_TUN_PORT, spec.tun_port)
                        + _U16.pack(6, DEST_TUN_FLAGS, spec.tun_flags))
        return out

    def _svc_nest(self, key: SvcKey) -> bytes:
        got = self._nested.get(key)
        if got is None:
            svc = self.svc_key(key)
            got = _NLA.pack(4 + len(svc), CMD_ATTR_SERVICE) + svc
            if len(self._nested) < 65536:
                self._nested[key] = got
        return got

    def op(self, op: Op, seq: int, pid: int = 0, ack: bool = True) -> bytes:
        """One request, as pyroute2 would build it (with NLM_F_ACK unless `ack` is
        false: then the kernel answers only a refusal)."""
        flags = NLM_F_REQUEST | NLM_F_ACK if ack else NLM_F_REQUEST
        spec = op.dspec
        if (op.dest is not None and spec is not None and op.what != "del"
                and spec.forward != "TUN" and ":" not in op.dest.address):
            svc = self._svc_nest(op.svc)
            return _HDR.pack(24 + len(svc) + _DEST4_LEN, self.family_id, flags, seq, pid,
                             CMD_NEW_DEST if op.what == "add" else CMD_SET_DEST,
                             GENL_VERSION, 0) + svc + _DEST4.pack(
                _DEST4.size, CMD_ATTR_DEST, 6, DEST_ADDR_FAMILY, socket.AF_INET,
                8, DEST_ADDR, socket.inet_pton(socket.AF_INET, op.dest.address),
                6, DEST_PORT, socket.htons(op.dest.port),
                8, DEST_FWD_METHOD, FWD[spec.forward], 8, DEST_WEIGHT, spec.weight,
                8, DEST_U_THRESH, spec.u_threshold, 8, DEST_L_THRESH, spec.l_threshold)
        svc = self.svc_key(op.svc)
        if op.dest is None:
            if op.spec is not None:
                svc += self.svc_spec(op.svc, op.spec)
            body = _NLA.pack(4 + len(svc), CMD_ATTR_SERVICE) + svc
        else:
            d = self.dest(op.dest, op.dspec if op.what != "del" else None)
            body = (_NLA.pack(4 + len(svc), CMD_ATTR_SERVICE) + svc
                    + _NLA.pack(4 + len(d), CMD_ATTR_DEST) + d)
        cmd = CMDS[(op.what, op.dest is not None)]
        return _HDR.pack(20 + len(body), self.family_id, flags, seq, pid, cmd, GENL_VERSION,
                         0) + body

    def get(self, cmd: int, seq: int, body: bytes = b"", pid: int = 0) -> bytes:
        return _HDR.pack(20 + len(body), self.family_id, NLM_F_REQUEST | NLM_F_DUMP, seq, pid,
                         cmd, GENL_VERSION, 0) + body


# -- decoding -------------------------------------------------------------------------------

def attrs(data: bytes | memoryview, start: int, end: int) -> dict[int, memoryview]:
    """Netlink attributes in data[start:end] by type (nested flag stripped)."""
    out: dict[int, memoryview] = {}
    mv = memoryview(data)
    unpack = _NLA.unpack_from
    while start + 4 <= end:
        length, kind = unpack(mv, start)
        if length < 4:
            break
        out[kind & 0x3FFF] = mv[start + 4:start + length]
        start += (length + 3) & ~3
    return out


def _u(raw: memoryview | None, default: int = 0) -> int:
    return int.from_bytes(raw, "little") if raw is not None and len(raw) else default


_STATS64 = struct.Struct("=" + "HHQ" * len(STATS_NAMES))  # the kernel's usual layout


def _stats(a: dict[int, memoryview], kind64: int, kind32: int) -> dict[str, int]:
    raw = a.get(kind64)
    if raw is not None and len(raw) == _STATS64.size:
        v = _STATS64.unpack(raw)  # (len, type, value) x 10, in type order
        if v[1::3] == _STATS_TYPES:
            return dict(zip(STATS_NAMES, v[2::3], strict=True))
    if raw is None:
        raw = a.get(kind32)
    if raw is None:
        return {}
    return {STATS_NAMES[k - 1]: _u(v) for k, v in attrs(raw, 0, len(raw)).items()
            if 1 <= k <= len(STATS_NAMES)}


_STATS_TYPES = tuple(range(1, len(STATS_NAMES) + 1))


def decode_service(a: dict[int, memoryview], stats: bool = True
                   ) -> tuple[SvcKey, SvcSpec, dict[str, int]]:
    family = 6 if _u(a.get(SVC_AF)) == socket.AF_INET6 else 4
    fwmark = _u(a.get(SVC_FWMARK))
    if fwmark:
        key = SvcKey(family, "", "", 0, fwmark)
    else:
        raw = bytes(a.get(SVC_ADDR) or b"\0" * 16)
        addr = socket.inet_ntop(AF[family], raw[:4] if family == 4 else raw[:16])
        port = a.get(SVC_PORT)
        key = SvcKey(family, PROTO_NAME.get(_u(a.get(SVC_PROTOCOL)), "?"), addr,
                     int.from_bytes(port, "big") if port is not None else 0)
    flags = a.get(SVC_FLAGS)
    mask = a.get(SVC_NETMASK)
    netmask = None
    if mask is not None:
        netmask = (str(_u(mask)) if family == 6 else socket.inet_ntoa(bytes(mask)))
    pe = a.get(SVC_PE_NAME)
    spec = SvcSpec(
        scheduler=bytes(a.get(SVC_SCHED_NAME) or b"").split(b"\0", 1)[0].decode(),
        flags=(_u(flags[:4]) if flags is not None else 0) & FLAG_MASK,
        timeout=_u(a.get(SVC_TIMEOUT)),
        netmask=netmask,
        pe_name=(bytes(pe).split(b"\0", 1)[0].decode() or None) if pe is not None else None,
    )
    return key, spec, _stats(a, SVC_STATS64, SVC_STATS) if stats else {}


def decode_dest(a: dict[int, memoryview], svc_family: int, stats: bool = True
                ) -> tuple[DestKey, DestSpec, dict[str, int]]:
    fam = _u(a.get(DEST_ADDR_FAMILY), AF[svc_family])
    raw = bytes(a.get(DEST_ADDR) or b"\0" * 16)
    addr = socket.inet_ntop(fam, raw[:4] if fam == socket.AF_INET else raw[:16])
    port = a.get(DEST_PORT)
    dkey = DestKey(addr, int.from_bytes(port, "big") if port is not None else 0)
    fwd = FWD_NAME.get(_u(a.get(DEST_FWD_METHOD)) & 7, "?")
    tun = fwd == "TUN" and a.get(DEST_TUN_TYPE) is not None
    tport = a.get(DEST_TUN_PORT)
    spec = DestSpec(
        forward=fwd,
        weight=_u(a.get(DEST_WEIGHT)),
        u_threshold=_u(a.get(DEST_U_THRESH)),
        l_threshold=_u(a.get(DEST_L_THRESH)),
        tun_type=TUN_NAME.get(_u(a.get(DEST_TUN_TYPE))) if tun else None,
        tun_port=int.from_bytes(tport, "big") if tun and tport is not None else 0,
        tun_flags=_u(a.get(DEST_TUN_FLAGS)) if tun else 0,
    )
    st = _stats(a, DEST_STATS64, DEST_STATS) if stats else {}
    st["activeconns"] = _u(a.get(DEST_ACTIVE_CONNS))
    st["inactconns"] = _u(a.get(DEST_INACT_CONNS))
    return dkey, spec, st


# -- the socket -----------------------------------------------------------------------------

class FastIpvs:
    """A raw NETLINK_GENERIC socket bound to the IPVS family.

    Each exchange (a batch of requests and their ACKs, a dump) is written once, as a
    generator that yields what to send (bytes) or that it wants the next datagram
    (None); it is driven either on the event loop or, for the checker child's first
    programming before asyncio is imported, with the socket blocking (`*_now`)."""

    def __init__(self, family_id: int, sock: socket.socket) -> None:
        self.enc = Encoder(family_id)
        self.sock = sock
        self.seq = 1
        self.buf = bytearray(1 << 20)
        self._lock: asyncio.Lock | None = None

    @property
    def lock(self) -> asyncio.Lock:
        """One exchange at a time: a table read (the status publisher's, every second)
        and a checker's update must not take each other's answers off the socket."""
        if self._lock is None:
            import asyncio

            self._lock = asyncio.Lock()
        return self._lock

    @classmethod
    def open(cls, blocking: bool = False) -> FastIpvs | None:
        """None when the kernel has no IPVS family. `blocking`: for the `*_now` methods
        (`unblock()` before the event loop uses it)."""
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        try:
            sock.bind((0, 0))
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            try:  # error ACKs without the request echoed back: smaller, more fit
                sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            except OSError:
                pass
            family = resolve_family(sock, "IPVS")
        except BaseException:
            sock.close()
            raise
        if family is None:
            sock.close()
            return None
        if blocking:
            sock.settimeout(NOW_TIMEOUT)
        else:
            sock.setblocking(False)
        return cls(family, sock)

    def unblock(self) -> None:
        self.sock.setblocking(False)

    def close(self) -> None:
        self.sock.close()

    def _next_seq(self) -> int:
        self.seq = self.seq % 0x7FFFFFFF + 1
        return self.seq

    # -- drivers -----------------------------------------------------------------------
    def _now(self, exchange: Exchange[T]) -> T:
        """Run `exchange` with the socket blocking (its timeout: NOW_TIMEOUT)."""
        try:
            step = next(exchange)
            while True:
                if step is not None:
                    self.sock.sendall(step)
                    step = exchange.send(None)
                else:
                    n = self.sock.recv_into(self.buf)
                    step = exchange.send(memoryview(self.buf)[:n])
        except StopIteration as done:
            return done.value

    async def _run(self, exchange: Exchange[T]) -> T:
        """Run `exchange` on the event loop, alone on the socket."""
        import asyncio

        loop = asyncio.get_running_loop()
        async with self.lock:
            try:
                step = next(exchange)
                while True:
                    if step is not None:
                        await loop.sock_sendall(self.sock, step)
                        step = exchange.send(None)
                    else:
                        n = await loop.sock_recv_into(self.sock, self.buf)
                        step = exchange.send(memoryview(self.buf)[:n])
            except StopIteration as done:
                return done.value

    # -- exchanges ---------------------------------------------------------------------
    def _apply(self, ops: Sequence[Op]) -> Exchange[list[int]]:
        """Send `ops` in order, BATCH per sendmsg; the errno of each (0: applied).

        Only a batch's last request asks for an ACK. The kernel answers the others only
        when it refuses one (netlink_rcv_skb acks on an error or on NLM_F_ACK), and it
        takes a batch's requests in order and queues their answers in order, so the
        last one's ACK (or refusal) comes after every refusal of its batch: one answer
        per batch instead of one per request, each refusal still matched by its
        sequence number."""
        result = [0] * len(ops)
        encode = self.enc.op
        for start in range(0, len(ops), BATCH):
            chunk = ops[start:start + BATCH]
            seqs = {self._next_seq(): start + i for i in range(len(chunk))}
            last = next(reversed(seqs))
            yield b"".join(encode(op, s, ack=s == last)
                           for s, op in zip(seqs, chunk, strict=True))
            done = False
            while not done:
                data = yield None
                assert data is not None
                for kind, _flags, seq, off, _end in messages(data):
                    if kind == NLMSG_ERROR and seq in seqs:
                        (code,) = struct.unpack_from("=i", data, off + 16)
                        result[seqs[seq]] = -code
                        done = done or seq == last
        return result

    def _dump(self, cmd: int, body: bytes = b"") -> Exchange[list[dict[int, memoryview]]]:
        """The IPVS_CMD_ATTR_* sets of each answer to a dump request."""
        seq = self._next_seq()
        yield self.enc.get(cmd, seq, body)
        out: list[dict[int, memoryview]] = []
        while True:
            got = yield None
            data = bytes(got)  # type: ignore[arg-type]  # the buffer is reused: copied
            for kind, _flags, mseq, off, end in messages(data):
                if mseq != seq:
                    continue
                if kind == NLMSG_DONE:
                    return out
                if kind == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", data, off + 16)
                    if code:
                        raise IpvsError(-code)
                    return out
                out.append(attrs(data, off + 20, end))

    def _dests_of(self, key: SvcKey) -> Exchange[list[dict[int, memoryview]]]:
        svc = self.enc.svc_key(key)
        return self._dump(CMD_GET_DEST, _NLA.pack(4 + len(svc), CMD_ATTR_SERVICE) + svc)

    # -- on the event loop -------------------------------------------------------------
    async def apply(self, ops: Sequence[Op]) -> list[int]:
        """Send `ops` in order, BATCH per sendmsg; the errno of each (0: applied)."""
        return await self._run(self._apply(ops))

    async def read(self, stats: bool = True) -> tuple[Table, dict[Any, dict[str, int]]]:
        """The whole table, and the kernel's counters per service and destination
        (without `stats`: only the connection counts of each destination)."""
        table: Table = {}
        counters: dict[Any, dict[str, int]] = {}
        for key, spec, st in await self._services(stats):
            counters[key] = st
            dests = {}
            for dkey, dspec, dst in await self._dests(key, stats):
                dests[dkey] = dspec
                counters[(key, dkey)] = dst
            table[key] = (spec, dests)
        return table, counters

    async def service_stats(self) -> dict[SvcKey, dict[str, int]]:
        """The counters of each service."""
        return {key: st for key, _spec, st in await self._services(True)}

    async def dest_stats(self, key: SvcKey) -> dict[DestKey, dict[str, int]]:
        """The counters of each destination of one service."""
        return {dkey: dst for dkey, _spec, dst in await self._dests(key, True)}

    async def _services(self, stats: bool) -> list[tuple[SvcKey, SvcSpec, dict[str, int]]]:
        return _services(await self._run(self._dump(CMD_GET_SERVICE)), stats)

    async def _dests(self, key: SvcKey, stats: bool
                     ) -> list[tuple[DestKey, DestSpec, dict[str, int]]]:
        return _dests(await self._run(self._dests_of(key)), key, stats)

    # -- blocking, before the event loop -----------------------------------------------
    def apply_now(self, ops: Sequence[Op]) -> list[int]:
        """apply(), the socket blocking."""
        return self._now(self._apply(ops))

    def read_now(self) -> Table:
        """read(stats=False)'s table, the socket blocking."""
        table: Table = {}
        for key, spec, _st in _services(self._now(self._dump(CMD_GET_SERVICE)), False):
            table[key] = (spec, {dkey: dspec for dkey, dspec, _ in
                                 _dests(self._now(self._dests_of(key)), key, False)})
        return table


def _services(tops: list[dict[int, memoryview]], stats: bool
              ) -> list[tuple[SvcKey, SvcSpec, dict[str, int]]]:
    out = []
    for top in tops:
        raw = top.get(CMD_ATTR_SERVICE)
        if raw is not None:
            out.append(decode_service(attrs(raw, 0, len(raw)), stats))
    return out


def _dests(tops: list[dict[int, memoryview]], key: SvcKey, stats: bool
           ) -> list[tuple[DestKey, DestSpec, dict[str, int]]]:
    out = []
    for dtop in tops:
        draw = dtop.get(CMD_ATTR_DEST)
        if draw is not None:
            out.append(decode_dest(attrs(draw, 0, len(draw)), key.family, stats))
    return out


def resolve_family(sock: socket.socket, name: str) -> int | None:
    """The generic-netlink family id of `name` (blocking: once, at open)."""
    body = attr(CTRL_ATTR_FAMILY_NAME, name.encode() + b"\0")
    sock.send(_HDR.pack(20 + len(body), GENL_ID_CTRL, NLM_F_REQUEST, 1, 0,
                        CTRL_CMD_GETFAMILY, 1, 0) + body)
    sock.settimeout(5)
    while True:
        data = sock.recv(65536)
        for kind, _flags, seq, off, end in messages(data):
            if seq != 1:
                continue
            if kind == NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", data, off + 16)
                if -code == errno.ENOENT:
                    return None
                raise IpvsError(-code)
            a = attrs(data, off + 20, end)
            return _u(a.get(CTRL_ATTR_FAMILY_ID)) or None


def ipvs_available() -> bool:
    """Does the kernel answer for IPVS? (no event loop needed)"""
    fast = FastIpvs.open()
    if fast is None:
        return False
    fast.close()
    return True
