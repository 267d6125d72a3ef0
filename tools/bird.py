"""A real BIRD 2 router for the BGP tests and the scale-out topology: its config
(`bird_conf`, the one writer of it) and `Bird`, one run in a namespace of a
Hosts/Lan, read with birdc (sessions with the directors, routes exported to the
namespace's kernel table, ECMP with `merge paths`). tools/scaleout.py writes the
config here and starts BIRD itself, beside its other processes."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from typing import Any

from nettopo import sh, wait_for

TEMPLATE = "directors"  # the peers' template: every director peer is one


def bird_conf(router_id: str, local_as: int, peers: Mapping[str, tuple[str, int]], *,
              hold: int = 3, local_address: str | None = None, log: str | None = None,
              families: tuple[str, ...] = ("ipv4",), passive: bool = False,
              keepalive: int | None = None, connect_retry: int | None = None,
              error_wait: tuple[int, int] = (1, 3), trace: bool = False) -> str:
    """A router importing the directors' routes (exporting none to them) into its kernel
    table, equal BGP routes merged into one multipath route. `peers`: protocol name ->
    (neighbor address, its AS). `log`: a file (None: stderr); `trace`: session states
    and routes logged, times to the millisecond (tests read when a route came and
    went); `passive`: the directors connect; `error_wait` (min, max s): a director
    back up is peered again at once."""
    lines = [f'log "{log}" all;' if log else "log stderr all;", f"router id {router_id};"]
    if trace:
        lines += ['timeformat route "%T.%3f";', 'timeformat log "%T.%3f";']
    lines.append("protocol device { scan time 1; }")
    for family in families:
        lines += ["protocol kernel {", f"    {family} {{ import none; export all; }};",
                  "    merge paths on;  # ECMP: equal BGP routes, one multipath route",
                  "}"]
    local = f"local {local_address} as {local_as};" if local_address else f"local as {local_as};"
    lines += [f"template bgp {TEMPLATE} {{", f"    {local}", f"    hold time {hold};"]
    if keepalive is not None:
        lines.append(f"    keepalive time {keepalive};")
    if connect_retry is not None:
        lines.append(f"    connect retry time {connect_retry};")
    lines.append(f"    error wait time {error_wait[0]}, {error_wait[1]};")
    if passive:
        lines.append("    passive on;")
    if trace:
        lines.append("    debug { states, routes };")
    lines += [f"    {family} {{ import all; export none; }};" for family in families]
    lines.append("}")
    lines += [f"protocol bgp {name} from {TEMPLATE} {{ neighbor {addr} as {asn}; }}"
              for name, (addr, asn) in peers.items()]
    return "\n".join(lines) + "\n"


def _host(address: str) -> str:
    return f"{address}/128" if ":" in address else f"{address}/32"


class Bird:
    """BIRD in `host`, passive for the directors' sessions, IPv4 and IPv6, traced; stopped
    by the hosts' close (its process is one of `hosts.procs`)."""

    def __init__(self, hosts: Any, host: str, router_id: str, local_as: int,
                 peers: dict[str, tuple[str, int]], hold: int = 3) -> None:
        """`peers`: protocol name -> (neighbor address, its AS)."""
        self.hosts, self.host = hosts, host
        self.dir = os.path.join(hosts.dir, f"bird-{host}")
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, "bird.ctl")
        text = bird_conf(router_id, local_as, peers, hold=hold,
                         log=os.path.join(self.dir, "bird.log"), families=("ipv4", "ipv6"),
                         passive=True, error_wait=(1, 2), trace=True)
        conf = os.path.join(self.dir, "bird.conf")
        with open(conf, "w") as f:
            f.write(text)
        self.proc = subprocess.Popen(["ip", "netns", "exec", hosts.ns[host], "bird", "-f",
                                      "-c", conf, "-s", self.sock,
                                      "-P", os.path.join(self.dir, "bird.pid")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        hosts.procs.append(self.proc)
        wait_for(lambda: os.path.exists(self.sock) and self.ok("show status"), 10,
                 what="bird to answer on its control socket")

    def ok(self, *cmd: str) -> bool:
        return sh("birdc", "-s", self.sock, *cmd, check=False).returncode == 0

    def birdc(self, *cmd: str) -> str:
        return sh("birdc", "-s", self.sock, *cmd).stdout

    def _show(self, address: str) -> str:
        """`show route ADDRESS/32` (/128); birdc fails with 'Network not found' when
        there is none, which is an answer here."""
        r = sh("birdc", "-s", self.sock, "show", "route", _host(address), check=False)
        if r.returncode and "Network not found" not in r.stdout:
            raise AssertionError(f"birdc: {r.stdout}{r.stderr}")
        return r.stdout

    def routes(self, address: str) -> list[str]:
        """The next hops of the BGP routes BIRD has for `address`/32, one per path."""
        return re.findall(r"via (\S+) on", self._show(address))

    def route_time(self, address: str) -> str | None:
        """When BIRD took its best route for `address`/32 (HH:MM:SS.mmm), or None."""
        m = re.search(r"\[\w+ (\d\d:\d\d:\d\d\.\d+)\]", self._show(address))
        return m.group(1) if m else None

    def removed_time(self, address: str) -> str:
        """When BIRD's log last shows a route to `address`/32 removed (HH:MM:SS.mmm)."""
        stamps = re.findall(rf"^(\S+) <TRACE> \S+ > removed \S* ?{re.escape(_host(address))}",
                            self.log(), re.M)
        assert stamps, f"no removal of {_host(address)} in BIRD's log"
        return stamps[-1].split(" ")[-1]

    def kernel_nexthops(self, address: str) -> list[str]:
        """The next hops of the router namespace's kernel route to `address`."""
        family = "-6" if ":" in address else "-4"
        out = self.hosts.run(self.host, "ip", family, "route", "show", _host(address)).stdout
        return re.findall(r"via (?:inet6 )?(\S+)", out)

    def counters(self, protocol: str) -> dict[str, int]:
        """A protocol's import counters: updates and withdraws received."""
        out = self.birdc("show", "protocols", "all", protocol)
        up = re.search(r"Import updates:\s+(\d+)", out)
        wd = re.search(r"Import withdraws:\s+(\d+)", out)
        return {"updates": int(up.group(1)) if up else 0,
                "withdraws": int(wd.group(1)) if wd else 0}

    def since(self, protocol: str) -> str:
        """When the protocol last changed state (a new session changes it)."""
        return self.birdc("show", "protocols", protocol).strip().splitlines()[-1].split()[4]

    def state(self, protocol: str) -> str:
        out = self.birdc("show", "protocols", protocol)
        line = out.strip().splitlines()[-1].split()
        return line[-1] if line else ""

    def log(self) -> str:
        try:
            with open(os.path.join(self.dir, "bird.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""
