"""Reading the real kernel's IPVS table over generic netlink, checked against ipvsadm."""

from __future__ import annotations

import asyncio
import subprocess

from director.ipvs_netlink import IpvsSocket, ipvs_available
from director.ipvs_table import DestKey, DestSpec, SvcKey


def ipvsadm(*args: str) -> str:
    return subprocess.run(["ipvsadm", *args], check=True, capture_output=True,
                          text=True).stdout


def read():
    async def go():
        sock = IpvsSocket()
        try:
            return await sock.read()
        finally:
            sock.close()

    return asyncio.run(go())


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
    table, stats = read()
    listing = ipvsadm("-Ln")
    assert len(table) == 3 == sum(line.split()[0] in ("TCP", "UDP", "FWM")
                                  for line in listing.splitlines()[3:] if line[:1] != " ")
    spec, dests = table[SvcKey(4, "TCP", "10.0.0.1", 80)]
    assert (spec.scheduler, spec.timeout, spec.flags & 1) == ("rr", 50, 1)
    assert dests == {
        DestKey("10.0.1.1", 80): DestSpec("NAT", 3),
        DestKey("10.0.1.2", 8080): DestSpec("NAT", 1, u_threshold=100, l_threshold=10),
    }
    spec6, dests6 = table[SvcKey(6, "UDP", "fd00::1", 53)]
    assert spec6.scheduler == "wlc" and dests6 == {DestKey("fd00::2", 53): DestSpec("DR", 2)}
    fspec, fdests = table[SvcKey(4, "", "", 0, 7)]
    assert fspec.scheduler == "sh"
    (d,) = fdests.values()
    assert (d.forward, d.weight) == ("TUN", 5)
    assert stats[SvcKey(4, "TCP", "10.0.0.1", 80)]["conns"] == 0
