"""Raw IP protocol 112 sockets: one per (interface, family), shared by its instances.

Received packets are handed up as `receive.Received` (addresses, TTL / hop limit,
payload) with the interface they came in on; sending takes the source address per
packet (IP_PKTINFO / IPV6_PKTINFO), so instances with different `mcast_src_ip` or
`unicast_src_ip` share one socket. Multicast loopback is off: we never hear ourselves.
VRRPv2 with AH authentication uses its own socket (IP protocol 51, IP_HDRINCL): the AH
ICV covers the IP header, so we build that header ourselves.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable

from .ah import AH_LEN, IPPROTO_AH
from .packet import VRRP_PROTO
from .receive import Received

log = logging.getLogger("director.vrrp")

MCAST4 = "224.0.0.18"
MCAST6 = "ff02::12"
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # Linux; not exported by Python


def is_multicast(address: str) -> bool:
    return ipaddress.ip_address(address).is_multicast


class VrrpSocket:
    def __init__(self, ifname: str, family: int, listen: bool = True,
                 proto: int = VRRP_PROTO) -> None:
        self.ifname = ifname
        self.family = family
        self.proto = proto
        self.ifindex = socket.if_nametoindex(ifname)
        self.groups: set[str] = set()
        af = socket.AF_INET6 if family == 6 else socket.AF_INET
        self.sock = socket.socket(af, socket.SOCK_RAW, proto)
        s = self.sock
        s.setblocking(False)
        if proto == IPPROTO_AH:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
        s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, ifname.encode())
        if family == 6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.ifindex)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        else:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                         struct.pack("4s4si", b"\0" * 4, b"\0" * 4, self.ifindex))
        if not listen:  # a VMAC's send-only socket: its copies are read on the base
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        self.listen = listen

    def join(self, group: str) -> None:
        if group in self.groups:
            return
        if self.family == 6:
            mreq = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", self.ifindex)
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        else:
            mreq = struct.pack("4s4si", socket.inet_aton(group), b"\0" * 4, self.ifindex)
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        self.groups.add(group)

    def start(self, loop: asyncio.AbstractEventLoop,
              handler: Callable[[VrrpSocket, Received], None]) -> None:
        if self.listen:
            loop.add_reader(self.sock.fileno(), self._readable, handler)

    def _readable(self, handler: Callable[[VrrpSocket, Received], None]) -> None:
        for _ in range(64):  # drain a burst, then let timers run
            try:
                rx = self._recv()
            except BlockingIOError:
                return
            except OSError as e:
                log.warning("VRRP socket on %s: receive failed: %s", self.ifname, e.strerror)
                return
            if rx is None:
                continue
            try:
                handler(self, rx)
            except Exception as e:  # one packet must not take the socket down
                log.error("VRRP packet from %s on %s: internal error %s: %s", rx.src,
                          self.ifname, type(e).__name__, e)
                log.debug("traceback", exc_info=True)

    def _recv(self) -> Received | None:
        if self.family == 4:
            data = self.sock.recv(65535)
            if len(data) < 20:
                return None
            ihl = (data[0] & 0x0F) * 4
            src, dst = socket.inet_ntoa(data[12:16]), socket.inet_ntoa(data[16:20])
            if data[9] == IPPROTO_AH:
                if len(data) < ihl + AH_LEN + 8:
                    log.info("IPv4 VRRP packet with AH from %s too short - %d bytes", src,
                             len(data))
                    return None
                return Received(4, src, dst, data[8], data[ihl + AH_LEN:], is_multicast(dst),
                                ah=data[:ihl + AH_LEN])
            return Received(4, src, dst, data[8], data[ihl:], is_multicast(dst))
        space = socket.CMSG_SPACE(20) + socket.CMSG_SPACE(4)
        data, anc, _flags, addr = self.sock.recvmsg(65535, space)
        ttl, dst = -1, ""
        for level, kind, value in anc:
            if level != socket.IPPROTO_IPV6:
                continue
            if kind == socket.IPV6_HOPLIMIT and len(value) >= 4:
                ttl = struct.unpack("@i", value[:4])[0]
            elif kind == socket.IPV6_PKTINFO and len(value) >= 16:
                dst = socket.inet_ntop(socket.AF_INET6, value[:16])
        src = addr[0].split("%")[0]
        return Received(6, src, dst, ttl, data, bool(dst) and is_multicast(dst))

    def send(self, payload: bytes, src: str, dst: str, ttl: int = 255) -> None:
        if self.family == 6:
            info = socket.inet_pton(socket.AF_INET6, src) + struct.pack("@I", self.ifindex)
            anc = [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, info)]
            if not is_multicast(dst):
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
            scope = self.ifindex if ipaddress.ip_address(dst).is_link_local else 0
            self.sock.sendmsg([payload], anc, 0, (dst, 0, 0, scope))
        else:
            info = struct.pack("@i4s4s", self.ifindex, socket.inet_aton(src), b"\0" * 4)
            anc = [(socket.IPPROTO_IP, IP_PKTINFO, info)]
            if not is_multicast(dst):
                self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
            self.sock.sendmsg([payload], anc, 0, (dst, 0))

    def send_packet(self, packet: bytes, dst: str) -> None:
        """A whole IPv4 packet, header included (an IP_HDRINCL socket)."""
        self.sock.sendto(packet, (dst, 0))

    def close(self) -> None:
        try:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
        except RuntimeError:
            pass
        self.sock.close()
