"""A client, the director (the VM's root namespace) and nginx real servers in namespaces.

    client ns  10.10.0.2 --veth-- 10.10.0.1 (director, VIP 10.10.0.100)
    director   10.20.0.1 on bridge dkbr0 --veth-- rsN ns 10.20.0.1N (nginx answering "rsN")
    (DR)       drclient ns 10.20.0.50 on dkbr0

Real servers route back through the director (NAT); for DR they also carry the VIP
on lo with arp_ignore=1 / arp_announce=2. Everything made here is removed by `down`.
"""

from __future__ import annotations

import sys

from testlib import Hosts, answer_server, sh

VIP = "10.10.0.100"
CLIENT = "10.10.0.2"
PREFIX = "dk"


def rs_ip(i: int) -> str:
    return f"10.20.0.1{i}"


class Topology(Hosts):
    """Namespaces "dk-client", "dk-rsN" (and "dk-drclient"); the director is the root
    namespace with links "dkbr0", "dkc", "dkd"."""

    def __init__(self, n_rs: int = 3) -> None:
        super().__init__(PREFIX)
        self.n = n_rs
        self.client = "client"

    def up(self) -> Topology:
        for k in ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0",
                  "net.ipv4.conf.default.rp_filter=0"):
            sh("sysctl", "-qw", k)
        sh("ip", "link", "add", f"{PREFIX}br0", "type", "bridge")
        sh("ip", "addr", "add", "10.20.0.1/24", "dev", f"{PREFIX}br0")
        sh("ip", "link", "set", f"{PREFIX}br0", "up")
        self._ns("client")
        sh("ip", "link", "add", f"{PREFIX}c", "type", "veth", "peer", "name", "eth0",
           "netns", self.ns["client"])
        sh("ip", "addr", "add", "10.10.0.1/24", "dev", f"{PREFIX}c")
        sh("ip", "addr", "add", f"{VIP}/32", "dev", f"{PREFIX}c")
        sh("ip", "link", "set", f"{PREFIX}c", "up")
        self.run("client", "ip", "addr", "add", f"{CLIENT}/24", "dev", "eth0")
        self.run("client", "ip", "link", "set", "eth0", "up")
        self.run("client", "ip", "route", "add", "default", "via", "10.10.0.1")
        for i in range(1, self.n + 1):
            ns = self._ns(f"rs{i}")
            sh("ip", "link", "add", f"{PREFIX}r{i}", "type", "veth", "peer", "name", "eth0",
               "netns", ns)
            sh("ip", "link", "set", f"{PREFIX}r{i}", "master", f"{PREFIX}br0", "up")
            self.run(f"rs{i}", "ip", "addr", "add", f"{rs_ip(i)}/24", "dev", "eth0")
            self.run(f"rs{i}", "ip", "link", "set", "eth0", "up")
            self.run(f"rs{i}", "ip", "route", "add", "default", "via", "10.20.0.1")
            self.start_nginx(i)
        return self

    def _ns(self, name: str) -> str:
        ns = self.add_ns(name)
        self.sysctl(name, "net.ipv4.conf.all.rp_filter", "0")
        return ns

    def start_nginx(self, i: int) -> None:
        self.serve_nginx(f"rs{i}", answer_server(f"rs{i}"))

    def stop_nginx(self, i: int) -> None:
        self.halt_nginx(f"rs{i}")

    def dr_mode(self) -> None:
        """Real servers answer the client straight, so the client moves onto their
        segment (replies from the VIP routed through the director would be martians)."""
        ns = self._ns("drclient")
        sh("ip", "link", "add", f"{PREFIX}d", "type", "veth", "peer", "name", "eth0",
           "netns", ns)
        sh("ip", "link", "set", f"{PREFIX}d", "master", f"{PREFIX}br0", "up")
        self.run("drclient", "ip", "addr", "add", "10.20.0.50/24", "dev", "eth0")
        self.run("drclient", "ip", "link", "set", "eth0", "up")
        self.run("drclient", "ip", "route", "add", "default", "via", "10.20.0.1")
        self.client = "drclient"
        for i in range(1, self.n + 1):
            self.sysctl(f"rs{i}", "net.ipv4.conf.all.arp_ignore", "1")
            self.sysctl(f"rs{i}", "net.ipv4.conf.all.arp_announce", "2")
            self.run(f"rs{i}", "ip", "addr", "add", f"{VIP}/32", "dev", "lo")

    def fetch(self, n: int, port: int = 80) -> list[str]:
        """n requests from the client, each on a new connection; the bodies."""
        code = (
            "import sys, urllib.request\n"
            f"for _ in range({n}):\n"
            "    try:\n"
            f"        r = urllib.request.urlopen('http://{VIP}:{port}/', timeout=3)\n"
            "        print(r.read().decode().strip())\n"
            "    except Exception as e:\n"
            "        print('ERR', type(e).__name__, getattr(e, 'reason', e))\n"
        )
        return self.run(self.client, sys.executable, "-c", code).stdout.split("\n")[:n]

    def down(self) -> None:
        try:
            self.close()  # nginx stopped, namespaces removed
        finally:
            for link in ("br0", "c", "d"):
                sh("ip", "link", "del", f"{PREFIX}{link}", check=False)
