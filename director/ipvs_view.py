"""`director ipvs`: the live IPVS table printed the way `ipvsadm -Ln` prints it."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from .ipvs_table import F_ONEPACKET, F_PERSISTENT, SvcKey, SvcSpec, Table

FWD_WORD = {"NAT": "Masq", "DR": "Route", "TUN": "Tunnel", "LOCAL": "Local"}
STATS = ("conns", "inpkts", "outpkts", "inbytes", "outbytes")
RATES = ("cps", "inpps", "outpps", "inbps", "outbps")


def _addr(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _service_head(key: SvcKey) -> str:
    if key.fwmark:
        return f"FWM  {key.fwmark}" + (" IPv6" if key.family == 6 else "")
    return f"{key.protocol:<4} {_addr(key.address, key.port)}"


def _service_line(key: SvcKey, spec: SvcSpec) -> str:
    line = f"{_service_head(key)} {spec.scheduler}"
    if spec.flags & F_PERSISTENT:
        line += f" persistent {spec.timeout}"
        if key.family == 4 and spec.netmask and spec.netmask != "255.255.255.255":
            line += f" mask {spec.netmask}"
    if spec.flags & F_ONEPACKET:
        line += " ops"
    return line


def render(table: Table, stats: dict[Any, dict[str, int]], columns: str = "") -> str:
    cols = STATS if columns == "stats" else RATES if columns == "rate" else ()
    out = ["IP Virtual Server (read over generic netlink by director)"]
    if cols:
        out.append("Prot LocalAddress:Port" + "".join(f" {c.capitalize():>10}" for c in cols))
        out.append("  -> RemoteAddress:Port")
    else:
        out.append("Prot LocalAddress:Port Scheduler Flags")
        out.append("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn")
    for key in sorted(table):
        spec, dests = table[key]
        if cols:
            st = stats.get(key, {})
            out.append(f"{_service_head(key):<27}" + "".join(f" {st.get(c, 0):>10}" for c in cols))
        else:
            out.append(_service_line(key, spec))
        for d in sorted(dests):
            ds = dests[d]
            st = stats.get((key, d), {})
            name = f"  -> {_addr(d.address, d.port)}"
            if cols:
                out.append(f"{name:<27}" + "".join(f" {st.get(c, 0):>10}" for c in cols))
            else:
                out.append(f"{name:<33} {FWD_WORD.get(ds.forward, ds.forward):<7} "
                           f"{ds.weight:<6} {st.get('activeconns', 0):<10} "
                           f"{st.get('inactconns', 0)}")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="director ipvs",
                                description="print the kernel's IPVS table like ipvsadm -Ln")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--stats", action="store_true", help="packet and byte counters")
    g.add_argument("--rate", action="store_true", help="rates (per second)")
    a = p.parse_args(argv)
    from .ipvs_fast import FastIpvs

    async def read() -> tuple[Table, dict[Any, dict[str, int]]] | None:
        sock = FastIpvs.open()
        if sock is None:
            return None
        try:
            return await sock.read(stats=a.stats or a.rate)
        finally:
            sock.close()

    got = asyncio.run(read())
    if got is None:
        print("director ipvs: this kernel has no IPVS (modprobe ip_vs?)", file=sys.stderr)
        return 1
    table, stats = got
    print(render(table, stats, "stats" if a.stats else "rate" if a.rate else ""))
    return 0
