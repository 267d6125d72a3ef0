"""The VRRP codec, cross-checked against scapy's VRRP / VRRPv3 layers as an
independent encoder (scapy does not verify checksums when parsing, so checksums are
checked against the bytes scapy computes when it builds)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.vrrp import VRRP, VRRPv3
from scapy.packet import raw

from daemonlib.checksum import checksum
from vrrp.packet import AUTH_PASS, Advert, Drop, decode, encode

SRC4, DST4 = "192.0.2.1", "224.0.0.18"
SRC6, DST6 = "fe80::1", "ff02::12"


def scapy_v2(vrid, prio, addrs, adv, authtype=0, pw=b""):
    pkt = IP(src=SRC4, dst=DST4, ttl=255) / VRRP(
        vrid=vrid, priority=prio, addrlist=list(addrs), adv=adv, authtype=authtype,
        auth1=int.from_bytes(pw[:4].ljust(4, b"\0"), "big"),
        auth2=int.from_bytes(pw[4:8].ljust(4, b"\0"), "big"))
    return raw(pkt)[20:]  # the bytes scapy built after its IPv4 header


def scapy_v3(vrid, prio, addrs, adv_cs, family=4):
    if family == 6:
        pkt = IPv6(src=SRC6, dst=DST6, hlim=255) / VRRPv3(vrid=vrid, priority=prio,
                                                          addrlist=list(addrs), adv=adv_cs)
        return raw(pkt)[40:]
    pkt = IP(src=SRC4, dst=DST4, ttl=255) / VRRPv3(vrid=vrid, priority=prio,
                                                   addrlist=list(addrs), adv=adv_cs)
    return raw(pkt)[20:]


def test_v2_matches_scapy_with_pass_auth():
    adv = Advert(2, 51, 100, ("192.168.3.253", "192.168.3.254"), 100, AUTH_PASS, b"1111")
    ours = encode(adv)
    assert ours == scapy_v2(51, 100, adv.addrs, 1, AUTH_PASS, b"1111")
    assert decode(ours) == adv


def test_v3_ipv4_and_ipv6_match_scapy():
    adv = Advert(3, 7, 150, ("10.0.0.1",), 10)
    assert encode(adv, 4, SRC4, DST4) == scapy_v3(7, 150, adv.addrs, 10)
    assert decode(encode(adv, 4, SRC4, DST4), 4, SRC4, DST4) == adv
    adv6 = Advert(3, 9, 254, ("2001:db8::1", "2001:db8::2"), 2)
    assert encode(adv6, 6, SRC6, DST6) == scapy_v3(9, 254, adv6.addrs, 2, family=6)
    assert decode(encode(adv6, 6, SRC6, DST6), 6, SRC6, DST6) == adv6


def test_v3_checksum_as_v2_compatibility():
    adv = Advert(3, 7, 150, ("10.0.0.1",), 100)
    old_style = encode(adv, 4, SRC4, DST4, checksum_as_v2=True)
    assert old_style != encode(adv, 4, SRC4, DST4)
    with pytest.raises(Drop) as e:
        decode(old_style, 4, SRC4, DST4)
    assert e.value.counter == "chk_err"
    assert decode(old_style, 4, SRC4, DST4, checksum_as_v2=True) == adv


@pytest.mark.parametrize("mutate, counter", [
    (lambda b: b[:5], "packet_len_err"),
    (lambda b: b[:-1], "packet_len_err"),
    (lambda b: bytes([0x42]) + b[1:], "invalid_type_rcvd"),
    (lambda b: bytes([0x12]) + b[1:], "invalid_type_rcvd"),
    (lambda b: b[:2] + bytes([b[2] ^ 1]) + b[3:], "chk_err"),
])
def test_bad_v2_packets_are_dropped_and_named(mutate, counter):
    good = encode(Advert(2, 1, 100, ("10.0.0.1",), 100))
    with pytest.raises(Drop) as e:
        decode(mutate(good))
    assert e.value.counter == counter


def test_checksum_known_value():
    # RFC 1071 example words 0001 f203 f4f5 f6f7 sum to 0xddf2, complemented 0x220d
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.sampled_from([4, 6]))
def test_random_bytes_never_crash(data, family):
    src, dst = (SRC4, DST4) if family == 4 else (SRC6, DST6)
    try:
        adv = decode(data, family, src, dst)
    except Drop as e:
        assert e.counter in ("packet_len_err", "invalid_type_rcvd", "chk_err")
    else:
        assert adv.version in (2, 3) and len(adv.addrs) == data[3]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 255), st.integers(0, 255), st.integers(1, 4095),
       st.lists(st.ip_addresses(v=4).map(str), min_size=0, max_size=20))
def test_v3_round_trip_and_scapy_agree(vrid, prio, adv_cs, addrs):
    adv = Advert(3, vrid, prio, tuple(addrs), adv_cs)
    data = encode(adv, 4, SRC4, DST4)
    assert decode(data, 4, SRC4, DST4) == adv
    assert data == scapy_v3(vrid, prio, addrs, adv_cs)
