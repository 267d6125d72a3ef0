"""VRRPv2 AH authentication on the wire: forged, replayed and malformed AH adverts sent
at a director master are dropped and counted under keepalived's names, and none of them
moves the VIP. (Interop with keepalived: tests/netns/test_vrrp_interop.py, modes v2-ah.)
"""

from __future__ import annotations

import shutil
import signal
import sys

import pytest
from lan import vrrp_conf, wait_for
from test_vrrp_features import VIP

from vrrp import ah
from vrrp.packet import AUTH_AH, AUTH_PASS, Advert, encode

C = "10.9.0.3"  # the attacker, host c
KEY = ah.key_of(b"s3cret42")


def advert(auth_type: int = AUTH_AH, interval_cs: int = 100) -> bytes:
    return encode(Advert(version=2, vrid=51, priority=200, addrs=("10.9.0.100",),
                         interval_cs=interval_cs, auth_type=auth_type))


def packet(vrrp: bytes, seq: int, key: bytes = KEY) -> bytearray:
    return bytearray(ah.build(vrrp, C, "224.0.0.18", 255, 1, seq, key, unicast=False))


def resign(p: bytearray) -> bytearray:
    p[32:44] = ah.icv(KEY, bytes(p[:20]), bytes(p[20:44]), bytes(p[44:]), unicast=False)
    return p


def bad_packets() -> dict[str, tuple[bytes, str | None]]:
    """name: (packet, the counter it lands in, None: dropped without a counter)."""
    spi = packet(advert(), 1 << 30)
    spi[24:28] = bytes([10, 9, 0, 1])  # not the sender's address: signed, but not by it
    other = packet(advert(), 1 << 30)
    other[20] = 6  # AH for TCP
    return {
        "wrong password": (bytes(packet(advert(), 1 << 30, ah.key_of(b"guess"))),
                           "auth_failure"),
        "replayed sequence": (bytes(packet(advert(), 1)), "auth_failure"),
        "spi": (bytes(resign(spi)), "auth_failure"),
        "PASS inside AH": (bytes(packet(advert(AUTH_PASS), 1 << 30)), "authtype_mismatch"),
        "next header": (bytes(resign(other)), None),
        "truncated": (bytes(packet(advert(), 1 << 30))[:50], None),
    }


def test_bad_ah_adverts_are_dropped_and_counted(lan):
    conf = vrrp_conf(version=2, advert="1", priority=150, auth="s3cret42", auth_type="AH")
    a = lan.start("a", "director", conf, "-P", "--dump-dir", "{dir}")
    lan.wait_holder(VIP, "a")
    before = a.dump_json()[0]["stats"]
    assert before["advert_sent"] >= 1  # so sequence number 1 is a replay
    bad = bad_packets()
    lines = "\n".join(f"send(pkt(bytes.fromhex('{p.hex()}')), iface='eth0', count=3, "
                      "verbose=0)" for p, _ in bad.values())
    script = ("from scapy.all import IP, send\n"
              "def pkt(b):\n    p = IP(b)\n    del p.chksum, p.len\n    return p\n" + lines)
    lan.run("c", sys.executable, "-c", script)
    want = {"auth_failure": 9, "authtype_mismatch": 3}

    def counted() -> bool:
        stats = a.dump_json()[0]["stats"]
        return all(stats[k] - before[k] == n for k, n in want.items())
    wait_for(counted, 10, what=f"counters {want}")
    stats = a.dump_json()[0]["stats"]
    assert stats["advert_rcvd"] == before["advert_rcvd"] == 0
    assert stats["become_master"] == 1 and stats["release_master"] == 0
    assert lan.holders(VIP) == ["a"]  # priority 200 forgeries moved nothing
    # the truncated one (sent last): logged, no instance's counter
    wait_for(lambda: "too short" in a.output(), 10, what="the truncated packet logged")
    assert a.proc.poll() is None


@pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived is not installed")
def test_reload_keeps_the_sequence_number(lan):
    """After a HUP the master continues its AH sequence: keepalived (backup) would drop
    adverts numbered from 1 again as replays and take over."""
    conf = vrrp_conf(version=2, advert="1", auth="s3cret42", auth_type="AH")
    a = lan.start("a", "director", conf.replace("priority 100", "priority 150"), "-P",
                  "--dump-dir", "{dir}")
    lan.wait_holder(VIP, "a", hosts=("a",))
    b = lan.start("b", "keepalived", conf)
    wait_for(lambda: "Entering BACKUP STATE" in b.output(), 15, what="keepalived in BACKUP")
    sent = a.dump_json()[0]["stats"]["advert_sent"]
    wait_for(lambda: a.dump_json()[0]["stats"]["advert_sent"] >= sent + 3, 10,
             what="keepalived hearing a few numbered adverts")
    a.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "Resuming MASTER STATE (reload)" in a.output(), 10, what="reload")
    b.quiet(5, timeout=20)  # > keepalived's Master_Down interval (3 s + skew) at 1 s
    assert "already processed" not in b.output()
    assert "Entering MASTER STATE" not in b.output()
    assert lan.holders(VIP) == ["a"]
