"""`use_vmac` on an IPv6 instance, as keepalived does it: the VMAC has the MAC
00:00:5e:00:02:VRID, no address generated from that shared MAC, our link-local address
(the base interface's) for the adverts, which leave from the VMAC; the client's
neighbour entry for the VIP stays the VMAC across failover, with a director pair and
with keepalived as the peer.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys

import pytest
from lan import vrrp_conf, wait_for

VIP6 = "fd00:9::100"
VMAC6 = "00:00:5e:00:02:33"
CONF = dict(vips=(f"{VIP6}/64",), extra="    use_vmac\n")


def link_local(lan, host: str, dev: str) -> set[str]:
    out = lan.run(host, "ip", "-6", "-o", "addr", "show", "dev", dev, "scope", "link").stdout
    return {line.split()[3].split("/")[0] for line in out.splitlines()}


def sniff_advert(lan, host: str) -> tuple[str, str]:
    """(source MAC, source address) of the next VRRP advert `host` sees on eth0."""
    code = ("from scapy.all import sniff, Ether, IPv6\n"
            "p = sniff(iface='eth0', count=1, timeout=10, lfilter=lambda p: IPv6 in p and "
            "p[IPv6].nh == 112)\n"
            "print(p[0][Ether].src, p[0][IPv6].src)\n")
    mac, src = lan.run(host, sys.executable, "-c", code).stdout.split()
    return mac, src


def sniff_na(lan, host: str):
    """Starts listening on `host`'s eth0; the returned call waits for the first
    unsolicited NA for the VIP: (Ether src, IPv6 src, target, its link-layer option,
    override flag)."""
    code = ("from scapy.all import sniff, Ether, IPv6, ICMPv6ND_NA, ICMPv6NDOptDstLLAddr\n"
            "import sys\nprint('ready', flush=True)\n"
            "p = sniff(iface='eth0', count=1, timeout=20, lfilter=lambda p: ICMPv6ND_NA in p "
            f"and p[ICMPv6ND_NA].tgt == '{VIP6}')[0]\n"
            "print(p[Ether].src, p[IPv6].src, p[ICMPv6ND_NA].tgt, "
            "p[ICMPv6NDOptDstLLAddr].lladdr, p[ICMPv6ND_NA].O)\n")
    proc = subprocess.Popen(["ip", "netns", "exec", lan.ns[host], sys.executable, "-c", code],
                            stdout=subprocess.PIPE, text=True)
    lan.procs.append(proc)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

    def result() -> tuple[str, ...]:
        return tuple(proc.communicate(timeout=40)[0].split())
    return result


def ping6(lan, host: str) -> None:
    """The VIP answers `host` within 10 s. One echo may be lost after a failover: both
    nodes use the same VMAC, and the LAN's bridge sends it to the old holder's port until
    it hears the new one (the old node's last frames, such as MLD reports on removing its
    VMAC, can teach it the old port again)."""
    wait_for(lambda: lan.run(host, "ping", "-6", "-c", "1", "-W", "1", VIP6,
                             check=False).returncode == 0, 10, what=f"{VIP6} to answer {host}")


def check_master(lan, host: str) -> None:
    assert VIP6 in lan.addrs(host, "vrrp.51")
    assert lan.run(host, "cat", "/sys/class/net/vrrp.51/address").stdout.strip() == VMAC6
    # the VMAC carries the base's link-local address, not one made from the shared MAC
    assert link_local(lan, host, "vrrp.51") == link_local(lan, host, "eth0")
    assert sniff_advert(lan, "c") == (VMAC6, next(iter(link_local(lan, host, "eth0"))))


def test_director_pair_ipv6_vmac(lan):
    a = lan.start("a", "director", vrrp_conf(priority=150, **CONF))
    lan.wait_holder(VIP6, "a", hosts=("a",))
    b = lan.start("b", "director", vrrp_conf(priority=100, **CONF), "-P", "--dump-dir", "{dir}")
    wait_for(lambda: "Entering BACKUP STATE" in b.output(), 10, what="b in BACKUP")
    b.quiet(10)  # b hears a's adverts through its own VMAC: no second master
    assert lan.holders(VIP6) == ["a"]
    check_master(lan, "a")
    ping6(lan, "c")
    assert lan.neigh_mac("c", VIP6) == VMAC6
    na = sniff_na(lan, "c")
    a.kill(signal.SIGTERM)
    lan.wait_holder(VIP6, "b", 10)
    # keepalived's unsolicited NA: from the VIP on the VMAC, override, the VMAC's MAC
    assert na() == (VMAC6, VIP6, VIP6, VMAC6, "1")
    assert not [x for x in b.output().splitlines() if "NA" in x and "failed" in x]
    check_master(lan, "b")
    ping6(lan, "c")
    assert lan.neigh_mac("c", VIP6) == VMAC6
    assert "vrrp.51" not in lan.run("a", "ip", "link").stdout  # removed on stop


@pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived is not installed")
@pytest.mark.parametrize("master", ["director", "keepalived"])
def test_ipv6_vmac_against_keepalived(lan, master):
    backup = "keepalived" if master == "director" else "director"
    a = lan.start("a", master, vrrp_conf(priority=150, **CONF))
    lan.wait_holder(VIP6, "a", hosts=("a",))
    b = lan.start("b", backup, vrrp_conf(priority=100, **CONF),
                  *(("-P", "--dump-dir", "{dir}") if backup == "director" else ("-P",)))
    wait_for(lambda: "Entering BACKUP STATE" in b.output(), 15, what="b in BACKUP")
    b.quiet(10)  # b hears a's adverts: no second master
    assert lan.holders(VIP6) == ["a"], "a second master appeared"
    check_master(lan, "a")
    ping6(lan, "c")
    assert lan.neigh_mac("c", VIP6) == VMAC6
    a.kill()  # SIGKILL: the VIP and VMAC stay behind on a, which has stopped advertising
    lan.wait_holder(VIP6, "b", 15, hosts=("b",))
    check_master(lan, "b")
    lan.run("a", "ip", "link", "del", "vrrp.51")  # a is gone from the LAN's point of view
    ping6(lan, "c")
    assert lan.neigh_mac("c", VIP6) == VMAC6
    assert b.proc.poll() is None


def test_director_pair_ipv6_vmac_xmit_base(lan):
    """vmac_xmit_base: adverts leave from the base interface (its MAC), the VIP lives on
    the VMAC and the client still learns the VMAC's MAC from the NA."""
    conf = dict(CONF, extra="    use_vmac\n    vmac_xmit_base\n")
    a = lan.start("a", "director", vrrp_conf(priority=150, **conf))
    lan.wait_holder(VIP6, "a", hosts=("a",))
    b = lan.start("b", "director", vrrp_conf(priority=100, **conf), "-P", "--dump-dir", "{dir}")
    wait_for(lambda: "Entering BACKUP STATE" in b.output(), 10, what="b in BACKUP")
    b.quiet(10)  # adverts from a's base interface heard: no second master
    assert lan.holders(VIP6) == ["a"]
    assert VIP6 in lan.addrs("a", "vrrp.51")
    base_mac = lan.run("a", "cat", "/sys/class/net/eth0/address").stdout.strip()
    assert sniff_advert(lan, "c") == (base_mac, next(iter(link_local(lan, "a", "eth0"))))
    na = sniff_na(lan, "c")
    a.kill(signal.SIGTERM)
    lan.wait_holder(VIP6, "b", 10)
    assert na() == (VMAC6, VIP6, VIP6, VMAC6, "1")
    assert not [x for x in b.output().splitlines() if "NA" in x and "failed" in x]
    ping6(lan, "c")
    assert lan.neigh_mac("c", VIP6) == VMAC6
