"""A real BIRD 2 router in a namespace of a test's Hosts/Lan: BGP sessions with the
directors, routes exported to the namespace's kernel table (ECMP with `merge paths`).
Read with birdc; stopped by the Lan's close (its process is one of `lan.procs`)."""

from __future__ import annotations

import os
import re
import subprocess

from testlib import sh, wait_for

CONF = """\
router id {router_id};
log "{dir}/bird.log" all;
timeformat route "%T.%3f";
timeformat log "%T.%3f";
protocol device {{ scan time 1; }}
protocol kernel {{
    ipv4 {{ export all; import none; }};
    merge paths on;
}}
protocol kernel {{
    ipv6 {{ export all; import none; }};
    merge paths on;
}}
template bgp director {{
    local as {local_as};
    hold time {hold};
    passive on;                 # the directors connect
    error wait time 1, 2;       # a director that comes back is heard at once
    debug {{ states, routes }};
    ipv4 {{ import all; export none; }};
    ipv6 {{ import all; export none; }};
}}
{peers}
"""


def _host(address: str) -> str:
    return f"{address}/128" if ":" in address else f"{address}/32"


class Bird:
    def __init__(self, hosts, host: str, router_id: str, local_as: int,
                 peers: dict[str, tuple[str, int]], hold: int = 3) -> None:
        """`peers`: protocol name -> (neighbor address, its AS)."""
        self.hosts, self.host = hosts, host
        self.dir = os.path.join(hosts.dir, f"bird-{host}")
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, "bird.ctl")
        text = CONF.format(router_id=router_id, local_as=local_as, hold=hold, dir=self.dir,
                           peers="\n".join(f"protocol bgp {name} from director {{ neighbor "
                                           f"{addr} as {asn}; }}"
                                           for name, (addr, asn) in peers.items()))
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
