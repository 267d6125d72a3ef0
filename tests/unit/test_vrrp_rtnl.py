"""vrrp/rtnl.py: the raw RTM_NEWADDR / RTM_DELADDR request says what pyroute2's did for
the same VIP (read back by pyroute2's own parser), and an ack or a refusal is read as
the errno the kernel gave. No root: the kernel's side is a socket pair."""

from __future__ import annotations

import errno
import socket
import struct
import threading

import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

from conf.model import VirtualIp
from vrrp import rtnl
from vrrp.addresses import _vip_flags, raw_vip


def parsed(req: rtnl.AddrRequest) -> ifaddrmsg:
    msg = ifaddrmsg(rtnl.addr_message(req, 7))
    msg.decode()
    return msg


def test_an_ipv4_vip_with_every_option_reads_back_as_pyroute2_would_send_it():
    vip = VirtualIp(address="10.9.0.100", prefixlen=24, family=4, nodad=True,
                    noprefixroute=True)
    msg = parsed(rtnl.AddrRequest(op="add", family=4, index=3, address=vip.address,
                                  prefixlen=24, broadcast="10.9.0.255", label="eth0:vip",
                                  scope=253, flags=_vip_flags(vip)))
    h = msg["header"]
    assert (h["type"], h["sequence_number"], h["length"]) == (rtnl.RTM_NEWADDR, 7,
                                                                len(msg.data))
    assert h["flags"] == 0x1 | 0x4 | 0x200 | 0x400  # request, ack, excl, create
    assert (msg["family"], msg["prefixlen"], msg["scope"], msg["index"], msg["flags"]) == (
        socket.AF_INET, 24, 253, 3, 0)
    assert msg.get_attr("IFA_ADDRESS") == msg.get_attr("IFA_LOCAL") == "10.9.0.100"
    assert msg.get_attr("IFA_BROADCAST") == "10.9.0.255"
    assert msg.get_attr("IFA_LABEL") == "eth0:vip"
    assert msg.get_attr("IFA_FLAGS") == 0x02 | 0x200  # nodad, noprefixroute


def test_an_ipv6_vip_has_no_local_and_is_nodad_and_a_delete_is_bare():
    v6 = VirtualIp(address="fd00:9::100", prefixlen=64, family=6)
    msg = parsed(rtnl.AddrRequest(op="add", family=6, index=4, address=v6.address,
                                  prefixlen=64, flags=_vip_flags(v6)))
    assert (msg["family"], msg["prefixlen"]) == (socket.AF_INET6, 64)
    assert msg.get_attr("IFA_ADDRESS") == "fd00:9::100"
    assert msg.get_attr("IFA_LOCAL") is None and msg.get_attr("IFA_FLAGS") == 0x02
    gone = parsed(rtnl.AddrRequest(op="delete", family=4, index=3, address="10.9.0.100",
                                   prefixlen=24))
    assert gone["header"]["type"] == rtnl.RTM_DELADDR and gone["header"]["flags"] == 0x5
    assert [n[0] for n in gone["attrs"]] == ["IFA_ADDRESS", "IFA_LOCAL"]


def test_peer_and_preferred_lft_stay_with_pyroute2():
    assert raw_vip(VirtualIp(address="10.0.0.1", prefixlen=32, family=4))
    assert not raw_vip(VirtualIp(address="10.0.0.1", prefixlen=32, family=4,
                                 peer="10.0.0.2"))
    assert not raw_vip(VirtualIp(address="10.0.0.1", prefixlen=32, family=4,
                                 preferred_lft=0))


@pytest.mark.parametrize("code", [0, errno.EEXIST])
def test_the_ack_for_our_sequence_number_is_the_answer(code):
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    r = rtnl.Rtnl.__new__(rtnl.Rtnl)
    r.sock, r.seq = ours, 40
    r.lock = threading.Lock()

    def ack(seq: int, err: int) -> bytes:
        body = struct.pack("=i", -err) + b"\0" * 16  # error, then the request's header
        return struct.pack("=IHHII", 16 + len(body), rtnl.NLMSG_ERROR, 0, seq, 0) + body

    kernel.send(ack(12, errno.EPERM))  # a stale answer to another request: not ours
    kernel.send(ack(41, code))
    try:
        assert r.addr(rtnl.AddrRequest(op="add", family=4, index=1, address="10.0.0.1",
                                       prefixlen=32)) == code
        assert kernel.recv(4096)[4:6] == struct.pack("=H", rtnl.RTM_NEWADDR)
    finally:
        ours.close()
        kernel.close()
