"""One address added or removed by one raw rtnetlink request (RTM_NEWADDR / RTM_DELADDR),
without pyroute2's event loop: tens of microseconds rather than most of a millisecond,
so that a new MASTER makes its VIPs on the loop's own thread, as keepalived's
netlink_ipaddress does. The message is the one pyroute2 builds for the same call:
IFA_LOCAL = IFA_ADDRESS for IPv4, flags as IFA_FLAGS, scope in the header.
"""

from __future__ import annotations

import socket
import struct
import threading

import attrs

from daemonlib.netlink import (
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_EXCL,
    NLM_F_REQUEST,
    NLMSG_ERROR,
    messages,
)
from daemonlib.netlink import attr as _nla

RTM_NEWADDR, RTM_DELADDR = 20, 21
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_BROADCAST, IFA_FLAGS = 1, 2, 3, 4, 8
_HDR = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, seq, pid
_IFA = struct.Struct("=BBBBI")  # ifaddrmsg: family, prefixlen, flags, scope, index


@attrs.frozen
class AddrRequest:
    """What `addr_message` needs; `label` and `broadcast` are IPv4 only."""

    op: str  # "add" | "delete"
    family: int  # 4 | 6
    index: int
    address: str
    prefixlen: int
    broadcast: str | None = None
    label: str | None = None
    scope: int | None = None
    flags: int = 0


def addr_message(req: AddrRequest, seq: int) -> bytes:
    af = socket.AF_INET6 if req.family == 6 else socket.AF_INET
    raw = socket.inet_pton(af, req.address)
    attrs_ = [_nla(IFA_ADDRESS, raw)]
    if req.family == 4:
        attrs_.append(_nla(IFA_LOCAL, raw))
        if req.broadcast:
            attrs_.append(_nla(IFA_BROADCAST, socket.inet_pton(af, req.broadcast)))
        if req.label:
            attrs_.append(_nla(IFA_LABEL, req.label.encode() + b"\0"))
    if req.flags:
        attrs_.append(_nla(IFA_FLAGS, struct.pack("=I", req.flags)))
    body = _IFA.pack(af, req.prefixlen, 0, req.scope or 0, req.index) + b"".join(attrs_)
    if req.op == "add":
        kind, flags = RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    else:
        kind, flags = RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK
    return _HDR.pack(_HDR.size + len(body), kind, flags, seq, 0) + body


class Rtnl:
    """A NETLINK_ROUTE socket for requests and their acks; one request at a time."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.sock.settimeout(5.0)
        self.seq = 0
        self.lock = threading.Lock()  # the loop's thread and the rtnl worker share it

    def addr(self, req: AddrRequest) -> int:
        """0, or the errno the kernel answered with."""
        with self.lock:
            self.seq += 1
            self.sock.send(addr_message(req, self.seq))
            while True:
                data = self.sock.recv(65536)
                for kind, _flags, seq, off, _end in messages(data):
                    if kind == NLMSG_ERROR and seq == self.seq:
                        return -struct.unpack_from("=i", data, off + _HDR.size)[0]

    def close(self) -> None:
        self.sock.close()
