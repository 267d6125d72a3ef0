"""VRRPv2 IPsec AH (vrrp/ah.py and its receive checks): byte-for-byte against adverts
keepalived 2.2.7 sent on a namespace LAN, scapy's AH layer reading ours, and every AH
drop landing in keepalived's counter."""

from __future__ import annotations

import attrs
from scapy.layers.inet import IP
from scapy.layers.ipsec import AH
from scapy.layers.vrrp import VRRP

from vrrp import ah
from vrrp.packet import AUTH_AH, AUTH_PASS, Advert, encode
from vrrp.receive import Policy, Received, check

# Two consecutive adverts of keepalived 2.2.7 (auth_type AH, auth_pass s3cret42, VRID 51,
# priority 150, VIP 10.9.0.100, from 10.9.0.1), captured from the wire with their
# kernel-filled IP checksum.
KEEPALIVED = [bytes.fromhex(h) for h in (
    "45c0004000010000ff33d0ad0a090001e0000012700400000a09000100000001873c12404351b309"
    "1942cbd02133960102013c5d0a0900640000000000000000",
    "45c0004000020000ff33d0ac0a090001e0000012700400000a09000100000002b00cb687d969b14b"
    "356b08792133960102013c5d0a0900640000000000000000")]
KEY = ah.key_of(b"s3cret42")
POLICY = Policy(version=2, vrid=51, interval_cs=100, auth_type=AUTH_AH, auth_pass=b"s3cret42",
                addrs=frozenset({"10.9.0.100"}))


def split(pkt: bytes) -> tuple[bytes, bytes, bytes]:
    return pkt[:20], pkt[20:44], pkt[44:]


def received(pkt: bytes) -> Received:
    return Received(4, "10.9.0.1", "224.0.0.18", pkt[8], pkt[44:], True, ah=pkt[:44])


def test_keepalived_adverts_verify_and_are_rebuilt_byte_for_byte():
    for n, pkt in enumerate(KEEPALIVED, start=1):
        ip, head, vrrp = split(pkt)
        assert ah.verify(KEY, ip, head, vrrp, unicast=False) == ""
        assert ah.parse(head).seq == n and ah.parse(head).next_header == 112
        ours = ah.build(vrrp, "10.9.0.1", "224.0.0.18", 255, ip_id=n, seq=n, key=KEY,
                        unicast=False)
        assert ours[:10] + ours[12:] == pkt[:10] + pkt[12:]  # all but the kernel's checksum


def test_our_vrrp_message_for_ah_matches_keepalived():
    adv = Advert(version=2, vrid=51, priority=150, addrs=("10.9.0.100",), interval_cs=100,
                 auth_type=AUTH_AH)
    assert encode(adv) == KEEPALIVED[0][44:]


def test_scapy_reads_our_ah_header():
    vrrp = KEEPALIVED[0][44:]
    p = IP(ah.build(vrrp, "10.9.0.2", "10.9.0.1", 64, 9, 77, KEY, unicast=True))
    assert p.proto == 51 and p.tos == 0xC0 and p.id == 9 and p.ttl == 64
    assert p[AH].nh == 112 and p[AH].payloadlen == 4 and p[AH].seq == 77
    assert p[AH].spi == int.from_bytes(bytes([10, 9, 0, 2]), "big")  # the source address
    inner = VRRP(bytes(p[AH].payload))  # scapy binds VRRP to IP only, not to AH's nh
    assert inner.vrid == 51 and inner.authtype == 2 and inner.addrlist == ["10.9.0.100"]


def test_mutable_fields_do_not_count_and_the_rest_does():
    ip, head, vrrp = split(KEEPALIVED[0])
    routed = bytearray(ip)
    routed[1], routed[6], routed[10:12] = 0x10, 0x40, b"\x12\x34"  # TOS, DF, checksum
    assert ah.verify(KEY, bytes(routed), head, vrrp, unicast=False) == ""
    ttl = bytearray(ip)
    ttl[8] = 60
    assert ah.verify(KEY, bytes(ttl), head, vrrp, unicast=False) != ""  # multicast: TTL is in
    uni = ah.build(vrrp, "10.9.0.1", "10.9.0.2", 255, 1, 1, KEY, unicast=True)
    hops = bytearray(uni)
    hops[8] = 250
    assert ah.verify(KEY, bytes(hops[:20]), uni[20:44], uni[44:], unicast=True) == ""
    other_id = bytearray(ip)
    other_id[5] ^= 1
    assert "HMAC" in ah.verify(KEY, bytes(other_id), head, vrrp, unicast=False)
    assert "HMAC" in ah.verify(ah.key_of(b"wrong"), ip, head, vrrp, unicast=False)
    assert "HMAC" in ah.verify(KEY, ip, head, vrrp[:-1] + b"\1", unicast=False)


def test_receive_accepts_keepalived_and_reports_the_sequence():
    v = check(POLICY, received(KEEPALIVED[0]), 0)
    assert v.advert is not None and v.advert.priority == 150 and v.counters == ("advert_rcvd",)
    assert v.ah_seq == 1
    v = check(POLICY, received(KEEPALIVED[1]), 1)
    assert v.advert is not None and v.ah_seq == 2


def test_receive_drops_and_counts_as_keepalived():
    pkt = KEEPALIVED[1]
    # replayed: a sequence number not above the counter
    assert check(POLICY, received(pkt), 2).counters == ("auth_failure",)
    assert check(POLICY, received(pkt), 5).advert is None
    # wrong password
    wrong = attrs.evolve(POLICY, auth_pass=b"other")
    assert check(wrong, received(pkt), 0).counters == ("auth_failure",)
    # a valid ICV over a forged SPI: signed by someone holding the key, but not the sender
    forged = bytearray(pkt)
    forged[24:28] = bytes([10, 9, 0, 7])
    ip, head, vrrp = split(bytes(forged))
    forged[32:44] = ah.icv(KEY, ip, head, vrrp, unicast=False)
    v = check(POLICY, received(bytes(forged)), 0)
    assert v.counters == ("auth_failure",) and "SPI" in v.message
    # AH for another protocol: not ours, dropped without a counter
    other = bytearray(pkt)
    other[20] = 6
    v = check(POLICY, received(bytes(other)), 0)
    assert v.advert is None and v.counters == ()
    # AH expected, plain VRRP received, and the reverse
    plain = Received(4, "10.9.0.1", "224.0.0.18", 255, pkt[44:], True)
    assert check(POLICY, plain, 0).counters == ("authtype_mismatch",)
    pass_policy = attrs.evolve(POLICY, auth_type=AUTH_PASS)
    assert check(pass_policy, received(pkt), 0).counters == ("authtype_mismatch",)


def test_sequence_counter_as_keepalived():
    c = ah.SeqCounter()
    assert [c.next_send(), c.next_send()] == [1, 2]
    assert not c.accept(2) and c.accept(10) and c.seq == 10
    assert c.next_send() == 11  # a new master continues above what it heard
    c.lower_priority_seen(40)
    assert c.next_send() == 42
    c.seq = ah.SEQ_MAX + 1
    assert c.next_send() == ah.SEQ_MAX + 1 and c.cycle
    c.becoming_master()
    assert c.seq == 0 and not c.cycle
    ids = ah.SeqCounter(ip_id=0xFFFE)
    assert [ids.next_ip_id(), ids.next_ip_id()] == [0xFFFF, 1]  # never 0: the kernel's
