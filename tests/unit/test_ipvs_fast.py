"""The fast IPVS encoder and decoder against pyroute2's, byte for byte (the kernel tier
checks both against the real kernel)."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from director.ipvs_fast import (
    CMD_ATTR_DEST,
    CMD_ATTR_SERVICE,
    NLM_F_ACK,
    NLMSG_DONE,
    NLMSG_ERROR,
    Encoder,
    FastIpvs,
    attrs,
    decode_dest,
    decode_service,
)
from director.ipvs_netlink import IpvsMsg, op_request
from director.ipvs_table import DestKey, DestSpec, Op, SvcKey, SvcSpec

FAMILY = 0x1F


def reference(op: Op, seq: int, flags: int = 5) -> bytes:
    cmd, attrs_ = op_request(op)
    msg = IpvsMsg()
    msg["cmd"], msg["version"], msg["attrs"] = cmd, 1, attrs_
    msg["header"].update({"type": FAMILY, "flags": flags, "sequence_number": seq, "pid": 0})
    msg.encode()
    return bytes(msg.data)


V4 = SvcKey(4, "TCP", "10.0.0.1", 80)
V6 = SvcKey(6, "UDP", "fd00::1", 53)
SCTP = SvcKey(4, "SCTP", "192.0.2.7", 3868)
FWM4, FWM6 = SvcKey(4, "", "", 0, 7), SvcKey(6, "", "", 0, 0xFFFFFFFF)
TUN = DestSpec("TUN", 3, tun_type="gue", tun_port=6080, tun_flags=3)
CASES = [
    Op("add", V4, SvcSpec()),
    Op("add", V4, SvcSpec("sh", flags=0x19, timeout=50, netmask="255.255.255.0")),
    Op("edit", V6, SvcSpec("mh", flags=1, timeout=300, netmask="64", pe_name="sip")),
    Op("add", V6, SvcSpec("wlc")),
    Op("add", FWM4, SvcSpec("rr")),
    Op("add", FWM6, SvcSpec("lc", netmask="128")),
    Op("del", SCTP),
    Op("del", FWM6),
    Op("add", V4, dest=DestKey("10.1.1.1", 8080), dspec=DestSpec()),
    Op("edit", V4, dest=DestKey("10.1.1.1", 8080),
       dspec=DestSpec("DR", 0, u_threshold=100, l_threshold=10)),
    Op("add", V6, dest=DestKey("fd00::2", 53), dspec=DestSpec("LOCAL", 65535)),
    Op("add", FWM4, dest=DestKey("10.2.2.2", 0), dspec=TUN),
    Op("add", FWM4, dest=DestKey("10.2.2.3", 0), dspec=DestSpec("TUN", 1, tun_type="ipip")),
    Op("add", FWM6, dest=DestKey("10.2.2.4", 0), dspec=DestSpec("NAT", 2)),  # v4 in v6
    Op("del", V4, dest=DestKey("10.1.1.1", 8080)),
    Op("del", V6, dest=DestKey("fd00::2", 53)),
]


@pytest.mark.parametrize("op", CASES, ids=str)
def test_encoding_is_pyroute2s(op):
    assert Encoder(FAMILY).op(op, 42).hex() == reference(op, 42).hex()
    # NLM_F_REQUEST alone: the kernel answers only a refusal
    assert Encoder(FAMILY).op(op, 42, ack=False).hex() == reference(op, 42, flags=1).hex()


ADDR4 = st.ip_addresses(v=4).map(str)
ADDR6 = st.ip_addresses(v=6).map(str)
U16 = st.integers(0, 0xFFFF)
U32 = st.integers(0, 0xFFFFFFFF)
SVC = st.one_of(
    st.builds(lambda a, p, proto: SvcKey(4, proto, a, p), ADDR4, U16,
              st.sampled_from(["TCP", "UDP", "SCTP"])),
    st.builds(lambda a, p, proto: SvcKey(6, proto, a, p), ADDR6, U16,
              st.sampled_from(["TCP", "UDP", "SCTP"])),
    st.builds(lambda fam, m: SvcKey(fam, "", "", 0, m), st.sampled_from([4, 6]),
              st.integers(1, 0xFFFFFFFF)),
)
DSPEC = st.one_of(
    st.builds(DestSpec, st.sampled_from(["NAT", "DR", "LOCAL"]), U16, U32, U32),
    st.builds(lambda w, t, p, f: DestSpec("TUN", w, tun_type=t, tun_port=p, tun_flags=f),
              U16, st.sampled_from(["ipip", "gue", "gre"]), U16, st.integers(0, 7)),
)


@settings(max_examples=300, deadline=None)
@given(svc=SVC, dest=st.one_of(ADDR4, ADDR6), port=U16, dspec=DSPEC,
       what=st.sampled_from(["add", "edit", "del"]), seq=st.integers(1, 0x7FFFFFFF),
       sched=st.sampled_from(["rr", "wrr", "sh", "mh", "wlc"]), flags=st.integers(0, 0x3D),
       timeout=U32, pe=st.sampled_from([None, "sip"]))
def test_any_op_encodes_as_pyroute2(svc, dest, port, dspec, what, seq, sched, flags,
                                    timeout, pe):
    netmask = "96" if svc.family == 6 else "255.255.0.0"
    enc = Encoder(FAMILY)
    sop = Op(what, svc, None if what == "del" else SvcSpec(sched, flags, timeout, netmask, pe))
    dop = Op(what, svc, dest=DestKey(dest, port), dspec=dspec)
    for op in (sop, dop):
        assert enc.op(op, seq) == reference(op, seq), op


def kernel_service(key: SvcKey, spec: SvcSpec, stats64: bool = True) -> bytes:
    """A service as the kernel sends it in a dump: the address in 16 bytes, counters."""
    af = socket.AF_INET6 if key.family == 6 else socket.AF_INET
    out = struct.pack("=HHH2x", 6, 1, af)
    if key.fwmark:
        out += struct.pack("=HHI", 8, 5, key.fwmark)
    else:
        raw = socket.inet_pton(af, key.address).ljust(16, b"\0")
        out += struct.pack("=HHH2x", 6, 2, {"TCP": 6, "UDP": 17, "SCTP": 132}[key.protocol])
        out += struct.pack("=HH", 20, 3) + raw
        out += struct.pack("=HH", 6, 4) + struct.pack(">H2x", key.port)
    name = spec.scheduler.encode() + b"\0"
    out += struct.pack("=HH", 4 + len(name), 6) + name + b"\0" * (-len(name) % 4)
    out += struct.pack("=HHII", 12, 7, spec.flags | 2, 0xFFFFFFFF)
    out += struct.pack("=HHI", 8, 8, spec.timeout)
    mask = (struct.pack("=I", int(spec.netmask)) if key.family == 6
            else socket.inet_aton(spec.netmask))
    out += struct.pack("=HH", 8, 9) + mask
    counters = b"".join(struct.pack("=HHQ", 12, i, i * 1000) for i in range(1, 11))
    out += struct.pack("=HH", 4 + len(counters), (12 if stats64 else 10) | 0x8000) + counters
    return out


def test_decode_service_as_the_kernel_sends_it():
    for key, spec in [(V4, SvcSpec("wrr", 1, 50, "255.255.255.0")),
                      (V6, SvcSpec("sh", 0x9, 0, "64")), (FWM4, SvcSpec("rr", 0, 0,
                                                                         "255.255.255.255"))]:
        raw = kernel_service(key, spec)
        got_key, got_spec, stats = decode_service(attrs(raw, 0, len(raw)))
        assert (got_key, got_spec) == (key, spec)
        assert stats["conns"] == 1000 and stats["outbps"] == 10000


def test_decode_dest_with_tunnel_and_counters():
    ref = reference(Op("add", FWM4, dest=DestKey("10.2.2.2", 0), dspec=TUN), 1)
    top = attrs(ref, 20, len(ref))
    raw = bytes(top[CMD_ATTR_DEST]) + struct.pack("=HHI", 8, 7, 5) + struct.pack("=HHI", 8, 8, 9)
    dkey, dspec, stats = decode_dest(attrs(raw, 0, len(raw)), 4)
    assert (dkey, dspec) == (DestKey("10.2.2.2", 0), TUN)
    assert (stats["activeconns"], stats["inactconns"]) == (5, 9)


class FakeKernel:
    """A socketpair standing in for netlink: answers each request as `verdict` says, as
    netlink_rcv_skb does: in order, a refusal always, an acceptance only when the
    request asks for an ACK."""

    def __init__(self, verdict) -> None:
        self.ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.ours.setblocking(False)
        self.verdict = verdict
        self.seen: list[int] = []
        self.acked: list[int] = []  # the sequence numbers of requests with NLM_F_ACK

    def serve(self) -> None:
        data = self.theirs.recv(1 << 20)
        off = 0
        while off < len(data):
            length, _kind, flags, seq = struct.unpack_from("=IHHI", data, off)
            self.seen.append(seq)
            code = self.verdict(len(self.seen) - 1)
            if flags & NLM_F_ACK:
                self.acked.append(seq)
            if code or flags & NLM_F_ACK:
                self.theirs.send(struct.pack("=IHHII", 36, NLMSG_ERROR, 0, seq, 0)
                                 + struct.pack("=i", -code) + data[off:off + 16])
            off += length


def test_apply_matches_each_ack_by_sequence_number(monkeypatch):
    kern = FakeKernel(lambda i: 17 if i % 3 == 1 else 0)  # every third: EEXIST
    fast = FastIpvs(FAMILY, kern.ours)
    monkeypatch.setattr("director.ipvs_fast.BATCH", 4)
    ops = [Op("add", V4, dest=DestKey(f"10.1.1.{i}", 80), dspec=DestSpec()) for i in range(10)]

    async def go():
        loop = asyncio.get_running_loop()
        loop.add_reader(kern.theirs.fileno(), kern.serve)
        try:
            return await fast.apply(ops)
        finally:
            loop.remove_reader(kern.theirs.fileno())

    codes = asyncio.run(go())
    assert codes == [17 if i % 3 == 1 else 0 for i in range(10)]
    assert len(set(kern.seen)) == 10
    # one ACK asked per batch of 4, by its last request: the rest answer only a refusal
    assert kern.acked == [kern.seen[3], kern.seen[7], kern.seen[9]]


def test_dump_stops_at_done_and_decodes_every_part():
    kern = FakeKernel(lambda i: 0)
    fast = FastIpvs(FAMILY, kern.ours)
    body = kernel_service(V4, SvcSpec("rr", 0, 0, "255.255.255.255"))
    svc = struct.pack("=HH", 4 + len(body), CMD_ATTR_SERVICE) + body

    def answer():
        data = kern.theirs.recv(65536)
        seq = struct.unpack_from("=I", data, 8)[0]
        part = struct.pack("=IHHIIBBH", 20 + len(svc), FAMILY, 2, seq, 0, 4, 1, 0) + svc
        kern.theirs.send(part + part)
        kern.theirs.send(struct.pack("=IHHIIi", 20, NLMSG_DONE, 2, seq, 0, 0))

    async def go():
        loop = asyncio.get_running_loop()
        loop.add_reader(kern.theirs.fileno(), answer)
        try:
            return await fast._run(fast._dump(4))
        finally:
            loop.remove_reader(kern.theirs.fileno())

    parts = asyncio.run(go())
    assert len(parts) == 2
    raw = parts[0][CMD_ATTR_SERVICE]
    assert decode_service(attrs(raw, 0, len(raw)))[0] == V4


def test_a_table_read_and_an_update_at_once_each_get_their_answers():
    """The status publisher reads the table while a checker's update is in flight: neither
    may take the other's answers off the socket."""
    kern = FakeKernel(lambda i: 0)
    fast = FastIpvs(FAMILY, kern.ours)

    def answer():
        data = kern.theirs.recv(65536)
        length, kind, flags, seq = struct.unpack_from("=IHHI", data, 0)
        if flags & 0x300:  # a dump: one empty answer, then DONE
            kern.theirs.send(struct.pack("=IHHIIi", 20, NLMSG_DONE, 2, seq, 0, 0))
        else:
            off = 0
            while off < len(data):
                length, _k, flags, seq = struct.unpack_from("=IHHI", data, off)
                if flags & NLM_F_ACK:
                    kern.theirs.send(struct.pack("=IHHIIi", 36, NLMSG_ERROR, 0, seq, 0, 0)
                                     + data[off:off + 16])
                off += length

    ops = [Op("add", V4, dest=DestKey(f"10.1.1.{i}", 80), dspec=DestSpec()) for i in range(5)]

    async def go():
        loop = asyncio.get_running_loop()
        loop.add_reader(kern.theirs.fileno(), answer)
        try:
            return await asyncio.wait_for(asyncio.gather(fast.read(), fast.apply(ops),
                                                         fast.read()), 5)
        finally:
            loop.remove_reader(kern.theirs.fileno())

    t1, codes, t2 = asyncio.run(go())
    assert codes == [0] * 5 and t1 == t2 == ({}, {})


def test_apply_now_blocking_gets_the_same_verdicts(monkeypatch):
    """The checker child's first programming (before asyncio): the same exchange driven
    with the socket blocking, each ACK matched by its sequence number."""
    import threading

    kern = FakeKernel(lambda i: 17 if i % 3 == 1 else 0)
    kern.ours.settimeout(10)
    fast = FastIpvs(FAMILY, kern.ours)
    monkeypatch.setattr("director.ipvs_fast.BATCH", 4)
    ops = [Op("add", V4, dest=DestKey(f"10.1.1.{i}", 80), dspec=DestSpec()) for i in range(10)]
    server = threading.Thread(target=lambda: [kern.serve() for _ in range(3)])  # 4 + 4 + 2
    server.start()
    try:
        codes = fast.apply_now(ops)
    finally:
        server.join(10)
    assert codes == [17 if i % 3 == 1 else 0 for i in range(10)]
    assert len(set(kern.seen)) == 10
    assert "asyncio" not in vars(fast) and fast._lock is None  # no event loop needed
