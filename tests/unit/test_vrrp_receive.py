"""Receive checks (vrrp/receive.py) rule by rule, a fuzz of the receive path with random
and mutated adverts (scapy-built and raw bytes), and the tracker arithmetic."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP
from scapy.layers.vrrp import VRRP, VRRPv3

from daemonlib.trackfile import file_contribution
from vrrp.packet import AUTH_PASS, Advert, encode
from vrrp.receive import COUNTERS, Policy, Received, check
from vrrp.trackers import contribution

SRC, DST = "10.0.0.2", "224.0.0.18"
V3 = Policy(version=3, vrid=51, interval_cs=100, addrs=frozenset({"10.0.0.100"}))
V2 = Policy(version=2, vrid=51, interval_cs=100, auth_type=AUTH_PASS, auth_pass=b"secret",
            addrs=frozenset({"10.0.0.100"}))


def rx(payload: bytes, ttl: int = 255, src: str = SRC, dst: str = DST) -> Received:
    return Received(4, src, dst, ttl, payload, dst.startswith("224."))


def v3(**kw) -> bytes:
    adv = dict(version=3, vrid=51, priority=100, addrs=("10.0.0.100",), interval_cs=100)
    adv.update(kw)
    return encode(Advert(**adv), 4, SRC, DST)


def v2(**kw) -> bytes:
    adv = dict(version=2, vrid=51, priority=100, addrs=("10.0.0.100",), interval_cs=100,
               auth_type=AUTH_PASS, auth_data=b"secret")
    adv.update(kw)
    return encode(Advert(**adv))


def verdict(policy: Policy, packet: Received) -> tuple[bool, tuple[str, ...]]:
    v = check(policy, packet)
    return v.advert is not None, v.counters


def test_valid_adverts_pass():
    assert verdict(V3, rx(v3())) == (True, ("advert_rcvd",))
    assert verdict(V2, rx(v2())) == (True, ("advert_rcvd",))


def test_each_drop_lands_in_its_counter():
    cases = [
        (V3, rx(v3(), ttl=254), "ip_ttl_err"),
        (V3, rx(v3()[:7]), "packet_len_err"),
        (V3, rx(v3()[:8]), "packet_len_err"),  # 1 address announced, none carried
        (V3, rx(v3()[:6] + b"\0\0" + v3()[8:]), "chk_err"),
        (V3, rx(v2(auth_type=0, auth_data=b"")), "invalid_type_rcvd"),  # v2 to a v3 instance
        (V3, rx(v3(interval_cs=0)), "advert_interval_err"),
        (V2, rx(v2(interval_cs=200)), "advert_interval_err"),
        (V2, rx(v2(auth_type=0, auth_data=b"")), "authtype_mismatch"),
        (V2, rx(v2(auth_type=7)), "invalid_authtype"),
        (V2, rx(v2(auth_data=b"wrong")), "auth_failure"),
        (V3, rx(bytes([0x32]) + v3()[1:]), "invalid_type_rcvd"),  # type 2
        (V3, rx(bytes([0x51]) + v3()[1:]), "invalid_type_rcvd"),  # version 5
    ]
    for policy, packet, counter in cases:
        assert verdict(policy, packet) == (False, (counter,)), counter


def test_priority_zero_and_address_list_are_counted_not_dropped():
    assert verdict(V3, rx(v3(priority=0))) == (True, ("advert_rcvd", "pri_zero_rcvd"))
    other = v3(addrs=("10.0.0.99",))
    assert verdict(V3, rx(other)) == (True, ("advert_rcvd", "addr_list_err"))
    strict = Policy(version=3, vrid=51, interval_cs=100, addrs=V3.addrs, strict=True)
    assert verdict(strict, rx(other)) == (False, ("advert_rcvd", "addr_list_err"))
    skip = Policy(version=3, vrid=51, interval_cs=100, skip_check_adv_addr=True)
    assert verdict(skip, rx(other)) == (True, ("advert_rcvd",))


def test_unicast_source_not_checked_by_default():
    """keepalived checks a unicast advert's source only with check_unicast_src (conf
    turns it on for a peer with min_ttl/max_ttl)."""
    uni = Policy(version=3, vrid=51, interval_cs=100, addrs=V3.addrs,
                 peers={"10.0.0.2": (None, None)})
    stranger = encode(Advert(3, 51, 100, ("10.0.0.100",), 100), 4, "10.0.0.9", "10.0.0.1")
    assert verdict(uni, rx(stranger, src="10.0.0.9", dst="10.0.0.1")) == (True,
                                                                            ("advert_rcvd",))


def test_unicast_source_and_ttl_range():
    uni = Policy(version=3, vrid=51, interval_cs=100, addrs=V3.addrs,
                 peers={"10.0.0.2": (250, None)}, check_unicast_src=True)
    to_us = dict(dst="10.0.0.1")
    assert verdict(uni, rx(encode(Advert(3, 51, 100, ("10.0.0.100",), 100), 4, SRC,
                                  "10.0.0.1"), ttl=64, **to_us))[1] == ("ip_ttl_err",)
    stranger = encode(Advert(3, 51, 100, ("10.0.0.100",), 100), 4, "10.0.0.9", "10.0.0.1")
    assert verdict(uni, rx(stranger, src="10.0.0.9", **to_us)) == (False, ("unicast_src_err",))
    ok = encode(Advert(3, 51, 100, ("10.0.0.100",), 100), 4, SRC, "10.0.0.1")
    assert verdict(uni, rx(ok, ttl=255, **to_us))[0]


def test_scapy_built_adverts_are_accepted():
    for prio in (1, 100, 254):
        pkt = IP(bytes(IP(src=SRC, dst=DST, ttl=255) / VRRPv3(
            vrid=51, priority=prio, ipcount=1, addrlist=["10.0.0.100"], adv=100)))
        assert verdict(V3, rx(bytes(pkt.payload))) == (True, ("advert_rcvd",))
    v2pkt = IP(bytes(IP(src=SRC, dst=DST, ttl=255) / VRRP(
        vrid=51, priority=100, ipcount=1, addrlist=["10.0.0.100"], authtype=1, adv=1,
        auth1=int.from_bytes(b"secr", "big"), auth2=int.from_bytes(b"et\0\0", "big"))))
    assert verdict(V2, rx(bytes(v2pkt.payload))) == (True, ("advert_rcvd",))


FUZZ = int(os.environ.get("FUZZ_EXAMPLES", "300"))


@settings(max_examples=FUZZ, deadline=None)
@given(st.binary(max_size=120), st.integers(0, 255), st.booleans())
def test_fuzz_random_bytes_never_crash(data, ttl, v2policy):
    v = check(V2 if v2policy else V3, rx(data, ttl=ttl))
    assert set(v.counters) <= set(COUNTERS)
    assert v.advert is not None or v.counters  # every drop is counted


@settings(max_examples=FUZZ, deadline=None)
@given(st.sampled_from([v3(), v2(), v3(addrs=("10.0.0.100", "10.0.0.101"))]),
       st.lists(st.tuples(st.integers(0, 40), st.integers(0, 255)), min_size=1, max_size=4),
       st.integers(-20, 20))
def test_fuzz_mutated_adverts(base, flips, cut):
    data = bytearray(base)
    for where, value in flips:
        if where < len(data):
            data[where] = value
    data = bytes(data[: len(data) + cut] if cut < 0 else data + bytes(cut))
    for policy in (V2, V3):
        v = check(policy, rx(data))
        assert set(v.counters) <= set(COUNTERS)
        if v.advert is not None:  # what passes is really ours and well formed
            assert v.advert.vrid == 51 and v.advert.version == policy.version
        else:
            assert v.counters


def test_tracker_arithmetic():
    assert contribution(True, 0, False) == (0, False)
    assert contribution(False, 0, False) == (0, True)  # weight 0: down is a fault
    assert contribution(True, 20, False) == (20, False)
    assert contribution(False, 20, False) == (0, False)
    assert contribution(False, -5, False) == (-5, False)
    assert contribution(True, -5, False) == (0, False)
    assert contribution(False, 10, True) == (-10, False)  # reverse
    assert file_contribution(3, 10, False) == (30, False)
    assert file_contribution(3, 10, True) == (-30, False)
    assert file_contribution(1, 0, False) == (0, True)
    assert file_contribution(-100, 3, False) == (-300, True)
