"""VRRPv2 `auth_type AH`: the IPsec Authentication Header as keepalived builds it. Pure.

An AH advert is a whole IPv4 packet we build ourselves (the ICV covers the IP header):
IP (protocol 51) | AH (next header 112, SPI = source address, sequence number,
HMAC-MD5-96 ICV) | the VRRPv2 message (auth type 2, zero auth data). The ICV is an
HMAC-MD5 keyed with the 8-byte password over the IP header with its mutable fields zeroed
(TOS, fragment offset, checksum, and the TTL for unicast adverts, which routers change),
the AH header with a zero ICV, and the VRRP message. One sequence counter per instance
serves both directions, as in keepalived: sending increments it, an accepted advert
raises it, so a peer that takes over continues above what it last heard.
"""

from __future__ import annotations

import hmac
import socket
import struct

import attrs

from .packet import VRRP_PROTO

IPPROTO_AH = 51
AH_LEN = 24  # next header, length, reserved, SPI, sequence, 12-byte ICV
ICV_LEN = 12  # HMAC-MD5 truncated to 96 bits (RFC 2403)
AH_PAYLOAD_LEN = 4  # AH length in 32-bit words minus 2
TOS_NETWORK_CONTROL = 0xC0
SEQ_MAX = 0xFFFFFFFD  # keepalived stops counting there ("cycled")


def key_of(password: bytes) -> bytes:
    """keepalived's auth_data: the password cut or zero-padded to 8 bytes."""
    return password[:8].ljust(8, b"\0")


@attrs.frozen
class AhHeader:
    next_header: int
    spi: bytes  # 4 bytes; keepalived puts the sender's IPv4 address there
    seq: int
    icv: bytes


def parse(ah: bytes) -> AhHeader:
    next_header, _plen, _reserved, spi, seq = struct.unpack("!BBH4sI", ah[:12])
    return AhHeader(next_header, spi, seq, ah[12:AH_LEN])


def _masked(ip_header: bytes, unicast: bool) -> bytes:
    """The IP header with the fields a router may change zeroed (RFC 2402 3.3.3.1.1)."""
    h = bytearray(ip_header)
    h[1] = 0  # TOS
    h[6:8] = b"\0\0"  # flags and fragment offset
    h[10:12] = b"\0\0"  # header checksum
    if unicast:
        h[8] = 0  # TTL
    return bytes(h)


def icv(key: bytes, ip_header: bytes, ah: bytes, rest: bytes, unicast: bool) -> bytes:
    """The 96-bit ICV over the masked IP header, `ah` with a zero ICV, and `rest`."""
    text = _masked(ip_header, unicast) + ah[:12] + b"\0" * ICV_LEN + rest
    return hmac.new(key, text, "md5").digest()[:ICV_LEN]


def build(vrrp: bytes, src: str, dst: str, ttl: int, ip_id: int, seq: int, key: bytes,
          unicast: bool) -> bytes:
    """The whole IPv4 packet (for an IP_HDRINCL socket; the kernel fills the checksum)."""
    saddr, daddr = socket.inet_aton(src), socket.inet_aton(dst)
    total = 20 + AH_LEN + len(vrrp)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, TOS_NETWORK_CONTROL, total, ip_id, 0, ttl,
                     IPPROTO_AH, 0, saddr, daddr)
    head = struct.pack("!BBH4sI", VRRP_PROTO, AH_PAYLOAD_LEN, 0, saddr, seq)
    return ip + head + icv(key, ip, head, vrrp, unicast) + vrrp


def verify(key: bytes, ip_header: bytes, ah: bytes, rest: bytes, unicast: bool) -> str:
    """Why the AH of a received packet is not valid, or "" (ICV first: nothing else in
    the packet can be trusted before it; then the SPI is the source address)."""
    want = icv(key, ip_header, ah, rest, unicast)
    if not hmac.compare_digest(want, ah[12:AH_LEN]):
        return "invalid IPSEC HMAC-MD5 value (fields mutation or bad password)"
    if ah[4:8] != ip_header[12:16]:
        return (f"invalid IPSEC SPI value {socket.inet_ntoa(ah[4:8])}, expected the "
                f"source {socket.inet_ntoa(ip_header[12:16])}")
    return ""


@attrs.define
class SeqCounter:
    """keepalived's ipsecah_counter: one per instance, for sending and receiving."""

    seq: int = 0
    cycle: bool = False
    ip_id: int = 0

    def next_send(self) -> int:
        if self.seq > SEQ_MAX:
            self.cycle = True
        else:
            self.seq += 1
        return self.seq

    def next_ip_id(self) -> int:
        """A non-zero IP id (the kernel replaces 0 by its own, which the ICV did not see)."""
        self.ip_id = self.ip_id % 0xFFFF + 1
        return self.ip_id

    def accept(self, seq: int) -> bool:
        """Anti-replay: only a sequence number above the last one seen or sent."""
        if seq > self.seq:
            self.seq = seq
            return True
        return False

    def becoming_master(self) -> None:
        if self.cycle:
            self.cycle = False
            self.seq = 0

    def lower_priority_seen(self, seq: int) -> None:
        """A master that hears a lower-priority advert continues above its number."""
        self.seq = seq + 1
        self.cycle = False
