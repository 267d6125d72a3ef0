"""VRRP advertisements on the wire: VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798). Pure.

`encode` builds the VRRP part of a packet (the IP header is the kernel's, from a raw
socket); `decode` checks it and raises `Drop` naming the keepalived counter the drop
is counted under. The v3 checksum covers an IPv4/IPv6 pseudo-header; keepalived's
`v3_checksum_as_v2` compatibility (checksum over the VRRP message only, as some old
implementations did) is a flag on both sides.
"""

from __future__ import annotations

import socket
import struct

import attrs

from daemonlib.checksum import checksum

VRRP_PROTO = 112
TYPE_ADVERT = 1
AUTH_NONE, AUTH_PASS, AUTH_AH = 0, 1, 2
V2_HEADER = 8
V3_HEADER = 8
AUTH_LEN = 8


class Drop(ValueError):
    """A received packet that is not a valid advert; `counter` is keepalived's name."""

    def __init__(self, counter: str, message: str) -> None:
        super().__init__(message)
        self.counter = counter


@attrs.frozen
class Advert:
    version: int  # 2 | 3
    vrid: int
    priority: int
    addrs: tuple[str, ...]
    interval_cs: int  # centiseconds; v2 carries whole seconds (interval_cs // 100)
    auth_type: int = AUTH_NONE
    auth_data: bytes = b""  # v2 PASS: the password, up to 8 bytes
    type: int = TYPE_ADVERT


def _pseudo(family: int, src: str, dst: str, length: int) -> bytes:
    if family == 6:
        return (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
                + struct.pack("!I3xB", length, VRRP_PROTO))
    return (socket.inet_aton(src) + socket.inet_aton(dst)
            + struct.pack("!xBH", VRRP_PROTO, length))


def _packed_addrs(family: int, addrs: tuple[str, ...]) -> bytes:
    af = socket.AF_INET6 if family == 6 else socket.AF_INET
    return b"".join(socket.inet_pton(af, a) for a in addrs)


def encode(adv: Advert, family: int = 4, src: str = "", dst: str = "",
           checksum_as_v2: bool = False) -> bytes:
    """The VRRP message of `adv`; v3 needs the IP source and destination for its checksum."""
    addrs = _packed_addrs(family, adv.addrs)
    if adv.version == 2:
        if family != 4:
            raise ValueError("VRRPv2 is IPv4 only")
        head = struct.pack("!BBBBBBH", 0x20 | adv.type, adv.vrid, adv.priority,
                           len(adv.addrs), adv.auth_type, adv.interval_cs // 100, 0)
        auth = adv.auth_data[:AUTH_LEN].ljust(AUTH_LEN, b"\0")
        body = head + addrs + auth
        csum = checksum(body)
    else:
        head = struct.pack("!BBBBHH", 0x30 | adv.type, adv.vrid, adv.priority, len(adv.addrs),
                           adv.interval_cs & 0x0FFF, 0)
        body = head + addrs
        if checksum_as_v2 and family == 4:
            csum = checksum(body)
        else:
            csum = checksum(_pseudo(family, src, dst, len(body)) + body)
    return body[:6] + struct.pack("!H", csum) + body[8:]


def decode(data: bytes, family: int = 4, src: str = "", dst: str = "",
           checksum_as_v2: bool = False) -> Advert:
    """Parse and verify one VRRP message (the IP payload)."""
    if len(data) < 8:
        raise Drop("packet_len_err", f"{len(data)} bytes is shorter than a VRRP header")
    ver_type, vrid, prio, count = data[0], data[1], data[2], data[3]
    version, ptype = ver_type >> 4, ver_type & 0x0F
    if version not in (2, 3):
        raise Drop("invalid_type_rcvd", f"unknown VRRP version {version}")
    if ptype != TYPE_ADVERT:
        raise Drop("invalid_type_rcvd", f"unknown VRRP packet type {ptype}")
    if version == 2 and family == 6:
        raise Drop("invalid_type_rcvd", "VRRPv2 over IPv6")
    alen = 16 if family == 6 else 4
    want = 8 + count * alen + (AUTH_LEN if version == 2 else 0)
    if len(data) < want:
        raise Drop("packet_len_err", f"{len(data)} bytes, {want} needed for {count} addresses")
    data = data[:want]  # trailing bytes (padding) are not ours to check
    if version == 2:
        if checksum(data) != 0:
            raise Drop("chk_err", "bad VRRPv2 checksum")
        auth_type, adv_int = data[4], data[5]
        interval_cs = adv_int * 100
        auth = data[8 + count * alen :]
        if auth_type == AUTH_PASS:
            auth = auth.rstrip(b"\0")
    else:
        ok = checksum(_pseudo(family, src, dst, len(data)) + data) == 0
        if not ok and checksum_as_v2 and family == 4:
            ok = checksum(data) == 0
        if not ok:
            raise Drop("chk_err", "bad VRRPv3 checksum")
        auth_type, auth = AUTH_NONE, b""
        interval_cs = struct.unpack("!H", data[4:6])[0] & 0x0FFF
    af = socket.AF_INET6 if family == 6 else socket.AF_INET
    addrs = tuple(socket.inet_ntop(af, data[8 + i * alen : 8 + (i + 1) * alen])
                  for i in range(count))
    return Advert(version=version, vrid=vrid, priority=prio, addrs=addrs,
                  interval_cs=interval_cs, auth_type=auth_type, auth_data=auth, type=ptype)
