"""A LAN of network namespaces for VRRP tests: a bridge in its own namespace and hosts
plugged into it, each with eth0, IPv4 10.9.0.N/24 and IPv6 fd00:9::N/64 (no DAD, so
addresses work at once). VRRP daemons (director or keepalived) run inside the hosts.
Everything made here is removed by `close`, also when a test fails.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable

from testlib import ROOT, nginx_conf, sh

DIRECTOR = os.path.join(ROOT, ".venv", "bin", "director")


def wait_for(cond: Callable[[], object], timeout: float = 20.0, step: float = 0.05,
             what: str = "condition") -> object:
    end = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


class Daemon:
    """A director or keepalived VRRP process in a namespace, in its own session."""

    def __init__(self, lan: Lan, host: str, kind: str, conf: str, args: tuple[str, ...],
                 env: dict[str, str] | None = None) -> None:
        self.lan, self.host, self.kind = lan, host, kind
        self.dir = tempfile.mkdtemp(prefix=f"{kind}-{host}-", dir=lan.dir)
        self.conf = os.path.join(self.dir, "keepalived.conf")
        self.write_conf(conf)
        self.log = os.path.join(self.dir, "log")
        args = tuple(x.replace("{dir}", self.dir) for x in args)
        env = {k: v.replace("{dir}", self.dir) for k, v in (env or {}).items()}
        pids = ["-p", f"{self.dir}/k.pid", "-r", f"{self.dir}/v.pid", "-c", f"{self.dir}/c.pid"]
        # director children publish live state: keep it in the daemon's directory
        exe = ["keepalived"] if kind == "keepalived" else [DIRECTOR, "--runtime-dir", self.dir]
        cmd = [*exe, "-n", "-l", "-D", "-f", self.conf, *pids, *args]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(["ip", "netns", "exec", lan.ns[host], *cmd],
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True, env={**os.environ, **env})

    def write_conf(self, conf: str) -> None:
        """`{dir}` in the text is this daemon's own directory."""
        with open(self.conf, "w") as f:
            f.write(conf.replace("{dir}", self.dir))

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """SIGKILL: the whole process group dies (keepalived's children too), no goodbye."""
        if self.proc.poll() is None:
            try:
                if sig == signal.SIGKILL:
                    os.killpg(self.proc.pid, sig)
                else:
                    self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def child_pid(self) -> int:
        with open(f"{self.dir}/v.pid") as f:
            return int(f.read())

    def output(self) -> str:
        with open(self.log, errors="replace") as f:
            return f.read()


class Lan:
    """`hosts`: names, numbered 1, 2, ... in order, or a mapping name -> host number N;
    host N gets {net}.N/24 and {net6}N/64."""

    def __init__(self, hosts: tuple[str, ...] | dict[str, int] = ("a", "b", "c"),
                 show_logs: bool = True, net: str = "10.9.0", net6: str = "fd00:9::") -> None:
        self.show_logs, self.net, self.net6 = show_logs, net, net6
        self.nginx_hosts: list[str] = []
        self.procs: list[subprocess.Popen[str]] = []  # helpers (SMTP sinks), killed at close
        self.tag = uuid.uuid4().hex[:6]
        self.dir = tempfile.mkdtemp(prefix="lan-")
        self.ns: dict[str, str] = {}
        self.daemons: list[Daemon] = []
        self.sw = self._netns("sw")
        sh("ip", "-n", self.sw, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        sh("ip", "-n", self.sw, "link", "set", "br0", "up")
        numbered = hosts if isinstance(hosts, dict) else {h: n for n, h in
                                                          enumerate(hosts, start=1)}
        for host, n in numbered.items():
            self.add_host(host, n)

    def _netns(self, name: str) -> str:
        full = f"dv-{self.tag}-{name}"
        sh("ip", "netns", "add", full)
        self.ns[name] = full
        sh("ip", "-n", full, "link", "set", "lo", "up")
        return full

    def add_host(self, host: str, n: int) -> None:
        ns = self._netns(host)
        for key in ("all", "default"):
            self.sysctl(host, f"net.ipv6.conf.{key}.accept_dad", "0")
        port = f"p{self.tag}{host}"[:15]
        sh("ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "link", "set", port, "netns", self.sw)
        sh("ip", "-n", self.sw, "link", "set", port, "master", "br0", "up")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "addr", "add", f"{self.net}.{n}/24", "dev", "eth0")
        sh("ip", "-n", ns, "addr", "add", f"{self.net6}{n}/64", "dev", "eth0", "nodad")
        wait_for(lambda: "fe80" in self.run(host, "ip", "-6", "addr", "show", "dev",
                                            "eth0").stdout, 10, what=f"{host} link-local")

    def sysctl(self, host: str, key: str, value: str) -> None:
        sh("ip", "netns", "exec", self.ns[host], "sysctl", "-qw", f"{key}={value}")

    def run(self, host: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.ns[host], *cmd, check=check)

    def port(self, host: str) -> str:
        return f"p{self.tag}{host}"[:15]

    def addrs(self, host: str, dev: str | None = None) -> set[str]:
        cmd = ["ip", "-o", "addr", "show"] + (["dev", dev] if dev else [])
        out = self.run(host, *cmd, check=False).stdout
        return {line.split()[3].split("/")[0] for line in out.splitlines()}

    def neigh_mac(self, host: str, address: str) -> str | None:
        """The MAC `host`'s neighbour table has for `address`, or None."""
        out = self.run(host, "ip", "neigh", "show", address).stdout.split()
        return out[out.index("lladdr") + 1] if "lladdr" in out else None

    def holders(self, address: str, hosts: tuple[str, ...] = ("a", "b")) -> list[str]:
        return [h for h in hosts if address in self.addrs(h)]

    def wait_holder(self, address: str, host: str, timeout: float = 20.0,
                    hosts: tuple[str, ...] = ("a", "b")) -> None:
        wait_for(lambda: self.holders(address, hosts) == [host], timeout,
                 what=f"{address} on {host} only (now on {self.holders(address, hosts)})")

    def start(self, host: str, kind: str, conf: str, *args: str,
              env: dict[str, str] | None = None) -> Daemon:
        d = Daemon(self, host, kind, conf, args or ("-P",), env)
        self.daemons.append(d)
        return d

    def nginx(self, host: str, body: str) -> None:
        """Start nginx in `host` answering `body` on port 80 (IPv4 and IPv6); `close` stops
        it. Calling it again for a stopped host starts it again."""
        d = os.path.join(self.dir, f"nginx-{host}")
        os.makedirs(d, exist_ok=True)
        with open(f"{d}/nginx.conf", "w") as f:
            f.write(nginx_conf(d, "    server { listen 80; listen [::]:80;\n"
                                  f"        location / {{ return 200 \"{body}\\n\"; }} }}"))
        self.run(host, "nginx", "-c", f"{d}/nginx.conf", "-p", d)
        if host not in self.nginx_hosts:
            self.nginx_hosts.append(host)

    def nginx_stop(self, host: str) -> None:
        d = os.path.join(self.dir, f"nginx-{host}")
        self.run(host, "nginx", "-c", f"{d}/nginx.conf", "-p", d, "-s", "stop", check=False)
        wait_for(lambda: not os.path.exists(f"{d}/nginx.pid"), 10, what=f"nginx on {host} "
                 "to stop")

    def http_get(self, host: str, url: str, timeout: float = 2.0) -> str | None:
        """The body `host` gets from `url`, stripped, or None when the request fails."""
        code = ("import sys, urllib.request\ntry:\n    print(urllib.request.urlopen("
                f"{url!r}, timeout={timeout}).read().decode().strip())\n"
                "except Exception as e:\n    sys.exit(f'failed: {e}')")
        out = self.run(host, sys.executable, "-c", code, check=False)
        return out.stdout.strip() if out.returncode == 0 else None

    def sniff_arp(self, host: str, seconds: float) -> Callable[[], list[tuple[float, str, str]]]:
        """Listen on `host`'s eth0 for `seconds`; the returned call waits for the end and
        gives (time, sender IP, sender MAC) of every ARP packet seen."""
        code = ("import sys, time\nfrom scapy.all import ARP, AsyncSniffer\n"
                "s = AsyncSniffer(iface='eth0', lfilter=lambda p: ARP in p, store=True)\n"
                "s.start(); time.sleep(0.3); print('ready', flush=True)\n"
                "time.sleep(float(sys.argv[1])); s.stop()\n"
                "for p in s.results: print(p.time, p[ARP].psrc, p[ARP].hwsrc)\n")
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns[host], sys.executable, "-c",
                                 code, str(seconds)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

        def result() -> list[tuple[float, str, str]]:
            out = proc.communicate(timeout=seconds + 30)[0]
            return [(float(t), ip, mac) for t, ip, mac in (x.split() for x in out.splitlines())]
        return result

    def smtp_sink(self, host: str, port: int = 25) -> Callable[[], list[dict[str, object]]]:
        """An SMTP server (aiosmtpd) on `host`'s addresses; the returned call gives the
        mails received so far: helo, mail_from, rcpt_tos, data (the message text)."""
        path = os.path.join(self.dir, f"smtp-{host}-{port}.jsonl")
        code = ("import asyncio, json, sys\nfrom aiosmtpd.smtp import SMTP\n"
                "class Sink:\n    async def handle_DATA(self, server, session, envelope):\n"
                "        with open(sys.argv[1], 'a') as f:\n"
                "            f.write(json.dumps({'helo': session.host_name, 'mail_from': "
                "envelope.mail_from, 'rcpt_tos': envelope.rcpt_tos, 'data': "
                "envelope.content.decode(errors='replace')}) + '\\n')\n"
                "        return '250 OK'\n"
                "async def main():\n    loop = asyncio.get_running_loop()\n"
                "    srv = await loop.create_server(lambda: SMTP(Sink()), None, "
                "int(sys.argv[2]))\n    print('ready', flush=True)\n"
                "    await srv.serve_forever()\nasyncio.run(main())\n")
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns[host], sys.executable, "-c",
                                 code, path, str(port)], stdout=subprocess.PIPE, text=True)
        self.procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", \
            "the SMTP sink did not start"

        def mails() -> list[dict[str, object]]:
            if not os.path.exists(path):
                return []
            with open(path) as f:
                return [json.loads(line) for line in f]
        return mails

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait(10)
        for d in self.daemons:
            d.kill()
            if self.show_logs:  # pytest shows it for a failing test only
                print(f"==== {d.kind} on {d.host}\n{d.output()[-6000:]}")
        for host in self.nginx_hosts:
            try:
                self.nginx_stop(host)
            except (AssertionError, subprocess.SubprocessError) as e:
                print(f"nginx on {host} did not stop: {e}")
        for ns in self.ns.values():
            sh("ip", "netns", "del", ns, check=False)
        subprocess.run(["rm", "-rf", self.dir], check=False)


def vrrp_conf(*, version: int = 3, priority: int = 100, vrid: int = 51, advert: str = "0.1",
              vips: tuple[str, ...] = ("10.9.0.100/24",), peers: tuple[str, ...] = (),
              src: str | None = None, auth: str | None = None, auth_type: str = "PASS",
              nopreempt: bool = False,
              state: str = "BACKUP", name: str = "VI_1", extra: str = "",
              glob: str = "", head: str = "") -> str:
    lines = [f"    state {state}", "    interface eth0", f"    virtual_router_id {vrid}",
             f"    priority {priority}", f"    advert_int {advert}", f"    version {version}"]
    if peers:
        lines.append(f"    unicast_src_ip {src}")
        lines.append("    unicast_peer {\n" + "".join(f"        {p}\n" for p in peers)
                     + "    }")
    elif src:
        lines.append(f"    mcast_src_ip {src}")
    if auth:
        lines.append(f"    authentication {{\n        auth_type {auth_type}\n"
                     f"        auth_pass {auth}\n    }}")
    if nopreempt:
        lines.append("    nopreempt")
    lines.append("    virtual_ipaddress {\n" + "".join(f"        {v}\n" for v in vips)
                 + "    }")
    return (f"global_defs {{\n    router_id {name}_{priority}\n{glob}}}\n{head}"
            f"vrrp_instance {name} {{\n" + "\n".join(lines) + f"\n{extra}}}\n")
