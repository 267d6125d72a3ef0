"""Scenario 001's network in namespaces, for `make demo` and the kernel-tier scenario test.

    client 10.30.0.9 (+ more addresses) --[wan]-- dir1 10.30.0.1 / dir2 10.30.0.2
        (director -f conf/examples/001-lvs-nat-{master,backup}.conf, VIP 10.30.0.100)
    dir1 192.168.3.101 / dir2 192.168.3.102 --[lan]-- nginx real servers 192.168.3.1-3
        (default gateway: the VIP 192.168.3.253, moved with the service VIP)

Each nginx also serves /slow.bin (SLOW_SIZE random bytes, the same on all three) at
`limit_rate` SLOW_RATE bytes/s: a download that lasts several seconds, for showing an
established connection kept across a failover (`Download`).

Needs root and IPVS. `NatPair.close` removes everything made, also after a failure.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading

from nettopo import Hosts, WaitTimeout, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIRECTOR = os.path.join(ROOT, ".venv", "bin", "director")
EXAMPLES = os.path.join(ROOT, "conf", "examples")
VIP = "10.30.0.100"
GATEWAY = "192.168.3.253"
HOSTS = ("sw", "client", "dir1", "dir2", "rs1", "rs2", "rs3")

SLOW_SIZE = 3 << 20  # bytes
SLOW_RATE = 256 << 10  # bytes/s: about 12 s for the whole file

__all__ = ["EXAMPLES", "GATEWAY", "SLOW_RATE", "SLOW_SIZE", "VIP", "Download", "NatPair",
           "WaitTimeout", "wait_for"]


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
        self.www = os.path.join(self.dir, "www")  # read by nginx's workers (nobody)
        os.makedirs(self.www)
        os.chmod(self.dir, 0o755)
        data = os.urandom(SLOW_SIZE)
        self.slow_sha256 = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.www, "slow.bin"), "wb") as f:
            f.write(data)
        os.chmod(self.www, 0o755)
        os.chmod(os.path.join(self.www, "slow.bin"), 0o644)
        for i in (1, 2, 3):
            self._plug(f"rs{i}", "lan", "eth0", f"192.168.3.{i}/24")
            self.run(f"rs{i}", "ip", "route", "add", "default", "via", GATEWAY)
            self.nginx(i)
        return self

    def nginx(self, i: int) -> None:
        """Start real server i's nginx: "server<i>" at /, the slow file at /slow.bin
        (its X-Server header names the server)."""
        self.serve_nginx(f"rs{i}", (
            f"    server {{ listen 80;\n"
            f"        location / {{ return 200 \"server{i}\\n\"; }}\n"
            f"        location = /slow.bin {{ root {self.www}; limit_rate {SLOW_RATE};\n"
            f"            add_header X-Server server{i}; }} }}"))

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

    def conns(self, host: str) -> list[tuple[str, str, str]]:
        """`host`'s IPVS connection entries as (state, client address:port, real server
        address:port); a persistence template has client port 0."""
        out = self.run(host, "ipvsadm", "-Lnc", check=False).stdout
        return [(f[2], f[3], f[5]) for f in (line.split() for line in out.splitlines())
                if len(f) == 6 and f[0] in ("TCP", "UDP")]

    def synced(self, host: str, sources: list[str], dl: Download
               ) -> list[tuple[str, str, str]]:
        """`host`'s entries for the persistence templates of `sources` (client port 0)
        and for the download's established connection; empty until all are there (on
        the BACKUP director: the copies its sync daemon received)."""
        want = {f"{src}:0" for src in sources} | {f"{dl.source}:{dl.port}"}
        got = [c for c in self.conns(host) if c[1] in want
               and (c[1].endswith(":0") or c[0] == "ESTABLISHED")]
        return got if {c[1] for c in got} == want else []

    def daemons(self, host: str) -> str:
        """`ipvsadm -L --daemon` in `host`: which sync daemons run there."""
        return self.run(host, "ipvsadm", "-L", "--daemon", check=False).stdout

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


DOWNLOAD = r"""
import hashlib, socket, sys, time
s = socket.create_connection((sys.argv[1], 80), timeout=60, source_address=(sys.argv[2], 0))
print("PORT", s.getsockname()[1], flush=True)
s.sendall(b"GET /slow.bin HTTP/1.0\r\n\r\n")
head, n, h, last = b"", 0, hashlib.sha256(), 0.0
try:
    while b"\r\n\r\n" not in head:
        head += s.recv(65536)
    head, body = head.split(b"\r\n\r\n", 1)
    fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
    size, server = int(fields[b"Content-Length"]), fields.get(b"X-Server", b"?").decode()
    print("SIZE", size, server, flush=True)
    while body:
        n += len(body)
        h.update(body)
        if time.monotonic() - last > 0.25:
            last = time.monotonic()
            print("BYTES", f"{time.time():.3f}", n, flush=True)
        body = s.recv(65536)
    print("DONE", f"{time.time():.3f}", n, h.hexdigest(), flush=True)
except Exception as e:
    print("FAILED", f"{time.time():.3f}", n, type(e).__name__, e, flush=True)
"""


class Download:
    """GET /slow.bin from the client through the VIP, from address `source`: the local
    port, the size and serving real server, progress (time, bytes) and the end, read
    from the downloader's lines as they come."""

    def __init__(self, net: NatPair, source: str) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", net.ns["client"], sys.executable, "-c", DOWNLOAD, VIP,
             source], stdout=subprocess.PIPE, text=True)
        self.source = source
        self.port = 0
        self.size = 0
        self.server = ""
        self.progress: list[tuple[float, int]] = []
        self.end: list[str] = []  # ["DONE", time, bytes, sha256] or ["FAILED", ...]
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            f = line.split()
            if f[0] == "PORT":
                self.port = int(f[1])
            elif f[0] == "SIZE":
                self.size, self.server = int(f[1]), f[2]
            elif f[0] == "BYTES":
                self.progress.append((float(f[1]), int(f[2])))
            else:
                self.end = f

    @property
    def received(self) -> int:
        return int(self.end[2]) if self.end else (self.progress[-1][1] if self.progress else 0)

    def longest_stall(self) -> tuple[float, float]:
        """The longest time without progress: (seconds, when it began, wall clock)."""
        points = self.progress + ([(float(self.end[1]), self.received)] if self.end else [])
        gaps = [(b[0] - a[0], a[0]) for a, b in zip(points, points[1:], strict=False)]
        return max(gaps, default=(0.0, 0.0))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(10)
