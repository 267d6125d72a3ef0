"""Scenario 001's network in namespaces, for `make demo` and the kernel-tier scenario test.

    client 10.30.0.9 (+ more addresses) --[wan]-- dir1 10.30.0.1 / dir2 10.30.0.2
        (director -f conf/examples/001-lvs-nat-{master,backup}.conf, VIP 10.30.0.100)
    dir1 192.168.3.101 / dir2 192.168.3.102 --[lan]-- nginx real servers 192.168.3.1-3
        (default gateway: the VIP 192.168.3.253, moved with the service VIP)

Needs root and IPVS. `NatPair.close` removes everything made, also after a failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from nettopo import Hosts, WaitTimeout, answer_server, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIRECTOR = os.path.join(ROOT, ".venv", "bin", "director")
EXAMPLES = os.path.join(ROOT, "conf", "examples")
VIP = "10.30.0.100"
GATEWAY = "192.168.3.253"
HOSTS = ("sw", "client", "dir1", "dir2", "rs1", "rs2", "rs3")

__all__ = ["EXAMPLES", "GATEWAY", "VIP", "NatPair", "WaitTimeout", "wait_for"]


class NatPair(Hosts):
    def __init__(self, prefix: str = "np", clients: int = 1) -> None:
        super().__init__(prefix)
        self.directors: dict[str, subprocess.Popen[bytes]] = {}
        self.clients = [f"10.30.0.{9 + i}" for i in range(clients)]

    def _plug(self, host: str, bridge: str, ifname: str, address: str) -> None:
        self.plug(host, ifname, "sw", bridge, f"{self.prefix}{host[-4:]}{bridge[0]}")
        self.run(host, "ip", "addr", "add", address, "dev", ifname)

    def build(self) -> NatPair:
        for host in HOSTS:
            self.add_ns(host)
        for br in ("wan", "lan"):
            self.bridge("sw", br)
        self._plug("client", "wan", "eth0", f"{self.clients[0]}/24")
        for extra in self.clients[1:]:
            self.run("client", "ip", "addr", "add", f"{extra}/24", "dev", "eth0")
        for i in (1, 2):
            self._plug(f"dir{i}", "lan", "eth0", f"192.168.3.10{i}/24")
            self._plug(f"dir{i}", "wan", "eth1", f"10.30.0.{i}/24")
            self.sysctl(f"dir{i}", "net.ipv4.ip_forward", "1")
        for i in (1, 2, 3):
            self._plug(f"rs{i}", "lan", "eth0", f"192.168.3.{i}/24")
            self.run(f"rs{i}", "ip", "route", "add", "default", "via", GATEWAY)
            self.nginx(i)
        return self

    def nginx(self, i: int) -> None:
        """Start real server i's nginx (answers "server<i>")."""
        self.serve_nginx(f"rs{i}", answer_server(f"server{i}"))

    def nginx_stop(self, i: int) -> None:
        self.halt_nginx(f"rs{i}")

    def start_director(self, host: str, conf: str) -> subprocess.Popen[bytes]:
        """`director -f conf` in `host`, in its own session; log in the temp dir."""
        run = os.path.join(self.dir, host)
        os.makedirs(run, exist_ok=True)
        with open(os.path.join(self.dir, f"{host}.log"), "wb") as log:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns[host], DIRECTOR, "-n", "-l", "-f", conf,
                 "-p", f"{run}/k.pid", "-r", f"{run}/v.pid", "-c", f"{run}/c.pid",
                 "--runtime-dir", run], stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.directors[host] = proc
        return proc

    def log(self, host: str) -> str:
        with open(os.path.join(self.dir, f"{host}.log"), errors="replace") as f:
            return f.read()

    def kill_node(self, host: str) -> None:
        """The node dies: director SIGKILLed (no goodbye advert), its links cut."""
        os.killpg(self.directors[host].pid, signal.SIGKILL)
        self.directors[host].wait(10)
        for dev in ("eth0", "eth1"):
            self.run(host, "ip", "link", "set", dev, "down")

    def holds(self, host: str, address: str = VIP) -> bool:
        out = self.run(host, "ip", "-o", "addr", "show", check=False).stdout
        return f"inet {address}/" in out

    def dests(self, host: str) -> list[str]:
        """The real servers in `host`'s IPVS table (NAT)."""
        out = self.run(host, "ipvsadm", "-Ln", check=False).stdout
        return [line.split()[1] for line in out.splitlines()
                if line.strip().startswith("->") and "Masq" in line]

    def get(self, source: str | None = None, timeout: float = 2.0) -> str | None:
        """One request from the client to the VIP (from `source` if given): the body, or
        None when it failed."""
        code = ("import socket, sys\n"
                "s = socket.create_connection((sys.argv[1], 80), timeout=float(sys.argv[3]),"
                " source_address=(sys.argv[2], 0) if sys.argv[2] else None)\n"
                "s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n"
                "data = b''\n"
                "while chunk := s.recv(4096): data += chunk\n"
                "print(data.split(b'\\r\\n\\r\\n', 1)[1].decode().strip())\n")
        out = self.run("client", sys.executable, "-c", code, VIP, source or "", str(timeout),
                       check=False)
        return out.stdout.strip() if out.returncode == 0 else None

    def close(self) -> None:
        for proc in self.directors.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
        super().close()
