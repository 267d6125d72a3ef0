"""Gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6) for VIPs.

Frames are built here (a few bytes each; no scapy in the daemon). A GARP is an ARP
request for the VIP from the VIP, broadcast, as keepalived sends it; an unsolicited NA
goes from the VIP to ff02::1 with the Override flag (and Router when the interface
forwards IPv6), our link-layer address, hop limit 255, also as keepalived sends it: no
link-local address is needed on the interface (a VMAC with vmac_xmit_base has none).
"""

from __future__ import annotations

import fcntl
import logging
import socket
import struct

log = logging.getLogger("director.vrrp")

ETH_P_ARP = 0x0806
BROADCAST = b"\xff" * 6
ALL_NODES = "ff02::1"
IPV6_FREEBIND = 78  # Linux >= 4.15; not exported by Python


def mac_of(ifname: str) -> bytes:
    with open(f"/sys/class/net/{ifname}/address") as f:
        return bytes.fromhex(f.read().strip().replace(":", ""))


def link_local(ifname: str) -> str | None:
    """The interface's IPv6 link-local address, from /proc/net/if_inet6."""
    try:
        with open("/proc/net/if_inet6") as f:
            for line in f:
                hexaddr, _idx, _plen, scope, _flags, name = line.split()
                if name == ifname and int(scope, 16) == 0x20:
                    return socket.inet_ntop(socket.AF_INET6, bytes.fromhex(hexaddr))
    except OSError:
        pass
    return None


def first_ipv4(ifname: str) -> str | None:
    """The interface's primary IPv4 address (what keepalived advertises from)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        req = struct.pack("256s", ifname.encode()[:15])
        return socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x8915, req)[20:24])  # SIOCGIFADDR
    except OSError:
        return None
    finally:
        s.close()


def garp_frame(mac: bytes, vip: str) -> bytes:
    ip = socket.inet_aton(vip)
    eth = BROADCAST + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + ip + b"\0" * 6 + ip
    return eth + arp


def na_message(mac: bytes, vip: str, router: bool = False) -> bytes:
    # type 136, code 0, checksum (the kernel fills it for ICMPv6 raw sockets), flags R, O
    flags = 0x20000000 | (0x80000000 if router else 0)
    return (struct.pack("!BBHI", 136, 0, 0, flags) + socket.inet_pton(socket.AF_INET6, vip)
            + struct.pack("!BB", 2, 1) + mac)


def forwards_ipv6(ifname: str) -> bool:
    try:
        with open(f"/proc/sys/net/ipv6/conf/{ifname}/forwarding") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


class Announcer:
    """Sends GARPs / NAs on one interface (the VMAC's, when the instance has one)."""

    def __init__(self, ifname: str) -> None:
        self.ifname = ifname
        self._arp: socket.socket | None = None
        self._icmp6: socket.socket | None = None

    def send(self, vip: str, family: int) -> None:
        try:
            mac = mac_of(self.ifname)
            if family == 6:
                self._send_na(mac, vip)
            else:
                if self._arp is None:
                    self._arp = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
                    self._arp.bind((self.ifname, ETH_P_ARP))
                self._arp.send(garp_frame(mac, vip))
        except OSError as e:
            what = "unsolicited NA" if family == 6 else "gratuitous ARP"
            log.error("Sending %s on %s for %s failed: %s", what, self.ifname, vip,
                      e.strerror or e)

    def _send_na(self, mac: bytes, vip: str) -> None:
        if self._icmp6 is None:
            s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
            # the VIP is the source; its address add may still be in flight (netlink
            # worker) when the first NA of a MASTER transition leaves
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
            self._icmp6 = s
        idx = socket.if_nametoindex(self.ifname)
        info = socket.inet_pton(socket.AF_INET6, vip) + struct.pack("@I", idx)
        self._icmp6.sendmsg([na_message(mac, vip, forwards_ipv6(self.ifname))],
                            [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, info)], 0,
                            (ALL_NODES, 0, 0, idx))

    def close(self) -> None:
        for s in (self._arp, self._icmp6):
            if s is not None:
                s.close()
        self._arp = self._icmp6 = None
