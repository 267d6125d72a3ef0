"""Reading the real kernel's IPVS table over generic netlink, checked against ipvsadm."""

from __future__ import annotations

import subprocess

from director.ipvs_kernel import KernelDest, ipvs_available, read_table


def ipvsadm(*args: str) -> str:
    return subprocess.run(["ipvsadm", *args], check=True, capture_output=True,
                          text=True).stdout


def test_family_present():
    assert ipvs_available()


def test_table_matches_ipvsadm(ipvs_clean):
    ipvsadm("-A", "-t", "10.0.0.1:80", "-s", "rr", "-p", "50")
    ipvsadm("-a", "-t", "10.0.0.1:80", "-r", "10.0.1.1:80", "-m", "-w", "3")
    ipvsadm("-a", "-t", "10.0.0.1:80", "-r", "10.0.1.2:8080", "-m", "-w", "1", "-x", "100",
            "-y", "10")
    ipvsadm("-A", "-u", "[fd00::1]:53", "-s", "wlc")
    ipvsadm("-a", "-u", "[fd00::1]:53", "-r", "[fd00::2]:53", "-g", "-w", "2")
    ipvsadm("-A", "-f", "7", "-s", "sh")
    ipvsadm("-a", "-f", "7", "-r", "10.0.2.1:0", "-i", "-w", "5")
    table = {(s.protocol, s.address, s.port, s.fwmark): s for s in read_table()}
    listing = ipvsadm("-Ln")
    assert len(table) == 3 == sum(line.split()[0] in ("TCP", "UDP", "FWM")
                                  for line in listing.splitlines()[3:] if line[:1] != " ")
    tcp = table[("TCP", "10.0.0.1", 80, 0)]
    assert (tcp.scheduler, tcp.timeout, tcp.family) == ("rr", 50, 4)
    assert tcp.dests == (
        KernelDest("10.0.1.1", 80, "NAT", 3),
        KernelDest("10.0.1.2", 8080, "NAT", 1, u_threshold=100, l_threshold=10),
    )
    udp = table[("UDP", "fd00::1", 53, 0)]
    assert udp.family == 6 and udp.dests == (KernelDest("fd00::2", 53, "DR", 2),)
    fwm = table[(None, None, 0, 7)]
    assert fwm.scheduler == "sh" and fwm.dests[0].forward == "TUN" and fwm.dests[0].weight == 5
