"""Reading the real kernel's IPVS table over generic netlink, checked against ipvsadm."""

from __future__ import annotations

import asyncio
import logging
import subprocess

from director.dataplane import KernelPlane
from director.ipvs_fast import FastIpvs
from director.ipvs_netlink import IpvsSocket, ipvs_available
from director.ipvs_table import DestKey, DestSpec, Op, SvcKey, SvcSpec, apply_ops, diff


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


def fast_read():
    async def go():
        sock = FastIpvs.open()
        assert sock is not None
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
    assert fast_read() == (table, stats)  # the fast decoder reads what pyroute2 reads


def listing() -> dict[str, set[tuple[str, str, str]]]:
    """`ipvsadm -Ln` as {service line: {(dest, forward, weight)}}."""
    out: dict[str, set[tuple[str, str, str]]] = {}
    svc = ""
    for line in ipvsadm("-Ln").splitlines()[3:]:
        f = line.split()
        if line.startswith("  ->"):
            out[svc].add((f[1], f[2], f[3]))
        else:
            svc = " ".join(f[:2])
            out[svc] = set()
    return out


V4 = SvcKey(4, "TCP", "10.0.0.1", 80)
V6 = SvcKey(6, "UDP", "fd00::1", 53)
FWM = SvcKey(4, "", "", 0, 7)
DESIRED = {
    V4: (SvcSpec("wrr", 1, 50, "255.255.255.0"),
         {DestKey("10.0.1.1", 80): DestSpec("NAT", 3),
          DestKey("10.0.1.2", 8080): DestSpec("NAT", 1, u_threshold=100, l_threshold=10)}),
    V6: (SvcSpec("wlc", 0, 0, "128"), {DestKey("fd00::2", 53): DestSpec("DR", 2)}),
    FWM: (SvcSpec("sh", 0x18, 0, "255.255.255.255"),
          {DestKey("10.0.2.1", 0): DestSpec("TUN", 5, tun_type="gue", tun_port=6080,
                                           tun_flags=1),
           DestKey("10.0.2.2", 0): DestSpec("TUN", 1, tun_type="ipip")}),
}


def program(plane: KernelPlane, ops: list[Op]):
    async def go():
        return await plane.apply(ops)

    return asyncio.run(go())


def test_fast_path_programs_the_desired_table(ipvs_clean):
    plane = KernelPlane()
    try:
        assert program(plane, diff(DESIRED, {})) == []
        assert fast_read()[0] == DESIRED == read()[0]
        assert listing() == {
            "TCP 10.0.0.1:80": {("10.0.1.1:80", "Masq", "3"), ("10.0.1.2:8080", "Masq", "1")},
            "UDP [fd00::1]:53": {("[fd00::2]:53", "Route", "2")},
            "FWM 7": {("10.0.2.1:0", "Tunnel", "5"), ("10.0.2.2:0", "Tunnel", "1")},
        }
        # edits and deletions, services and real servers
        changed = {
            V4: (SvcSpec("rr", 0, 0, "255.255.255.255"),
                 {DestKey("10.0.1.1", 80): DestSpec("NAT", 7)}),
            FWM: DESIRED[FWM],
        }
        ops = diff(changed, DESIRED, owned=DESIRED)
        assert program(plane, ops) == []
        assert fast_read()[0] == changed
        assert listing()["TCP 10.0.0.1:80"] == {("10.0.1.1:80", "Masq", "7")}
    finally:
        plane.close()


def test_a_refusal_is_reported_for_its_own_op_only(ipvs_clean, caplog):
    plane = KernelPlane()
    try:
        assert program(plane, diff(DESIRED, {})) == []
        dup = Op("add", V4, dest=DestKey("10.0.1.1", 80), dspec=DestSpec("NAT", 9))
        new = Op("add", V4, dest=DestKey("10.0.1.9", 80), dspec=DestSpec("NAT", 4))
        ghost = Op("add", SvcKey(4, "TCP", "10.9.9.9", 1), dest=DestKey("10.0.1.1", 80),
                   dspec=DestSpec())
        bad_sched = Op("add", SvcKey(4, "TCP", "10.9.9.8", 1), SvcSpec("nosuch"))
        orphan = Op("add", bad_sched.svc, dest=DestKey("10.0.1.1", 80), dspec=DestSpec())
        with caplog.at_level(logging.INFO, "director.ipvs"):
            failed = program(plane, [dup, new, ghost, bad_sched, orphan])
        assert {op for op, _ in failed} == {bad_sched, dup, ghost, orphan}
        reasons = dict((str(op), why) for op, why in failed)
        assert "errno 17" in reasons[str(dup)]  # EEXIST
        assert reasons[str(orphan)] == "its service was refused"
        assert f"IPVS: cannot {dup}: File exists (errno 17)" in caplog.messages
        assert f"IPVS: skipping the real servers of {bad_sched.svc}" in caplog.messages
        want = apply_ops(DESIRED, [new])
        assert fast_read()[0] == want  # the good op went through, nothing else changed
    finally:
        plane.close()


def test_ten_thousand_destinations_read_back(ipvs_clean):
    desired = {SvcKey(4, "TCP", f"10.{v // 250}.{v % 250}.1", 80):
               (SvcSpec("wrr", 1, 50, "255.255.255.255"),
                {DestKey(f"172.16.{v % 250}.{r + 1}", 80): DestSpec("NAT", r + 1)
                 for r in range(10)})
               for v in range(1000)}
    plane = KernelPlane()
    try:
        assert program(plane, diff(desired, {})) == []
        table, stats = fast_read()
        assert table == desired
        assert sum(len(v) for v in listing().values()) == 10_000
        # one weight: one op, applied
        key = next(iter(desired))
        dests = dict(desired[key][1])
        d0 = next(iter(dests))
        dests[d0] = DestSpec("NAT", 99)
        one = diff({**desired, key: (desired[key][0], dests)}, table)
        assert len(one) == 1 and program(plane, one) == []
        assert fast_read()[0][key][1][d0].weight == 99
    finally:
        plane.close()
