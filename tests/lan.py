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
import threading
from collections.abc import Callable

from testlib import ROOT, Hosts, answer_server, wait_for

DIRECTOR = os.path.join(ROOT, ".venv", "bin", "director")

__all__ = ["AddrMonitor", "Daemon", "Lan", "vrrp_conf", "wait_for"]


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
        if kind == "keepalived":  # its SIGUSR1/SIGUSR2 dumps go to $TMPDIR: keep them ours
            env.setdefault("TMPDIR", self.dir)
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

    def dump_json(self) -> list[dict]:
        """keepalived.json on the JSON signal (the daemon runs with --dump-dir {dir})."""
        path = os.path.join(self.dir, "keepalived.json")
        if os.path.exists(path):
            os.unlink(path)
        self.proc.send_signal(signal.SIGRTMIN + 2)
        wait_for(lambda: os.path.exists(path), 10, what=f"keepalived.json of {self.host}")
        with open(path) as f:
            return json.load(f)

    def keepalived_stats(self) -> list[dict[str, int]]:
        """keepalived's counters per instance (config order), from the file its VRRP
        child writes on SIGUSR2 ($TMPDIR/keepalived.stats, vrrp_print_stats), named as
        the director's: advert_rcvd, advert_sent, become_master, release_master,
        pri_zero_rcvd, pri_zero_sent."""
        path = os.path.join(self.dir, "keepalived.stats")
        if os.path.exists(path):
            os.unlink(path)
        self.proc.send_signal(signal.SIGUSR2)
        # one fprintf'd buffer, flushed at fclose: complete once its last line is in
        stats = wait_for(lambda: _keepalived_stats(path), 10,
                         what=f"keepalived.stats of {self.host} after SIGUSR2")
        return stats  # type: ignore[return-value]

    def stat(self, counter: str, instance: int = 0) -> int:
        if self.kind == "keepalived":
            return self.keepalived_stats()[instance][counter]
        return int(self.dump_json()[instance]["stats"][counter])

    def wait_adverts(self, n: int, timeout: float = 15.0, instance: int = 0) -> None:
        """Wait until this daemon (director or keepalived) has received `n` more adverts
        than now: it hears its peer, so its Master_Down keeps being reset (a "nothing
        moved" check is then about adverts really heard, not about a guessed time)."""
        start = self.stat("advert_rcvd", instance)
        wait_for(lambda: self.stat("advert_rcvd", instance) >= start + n, timeout, step=0.2,
                 what=f"{self.host} to hear {n} more advert(s)")

    def quiet(self, adverts: int, timeout: float = 15.0) -> None:
        """Give this BACKUP the chance to misbehave before a "nothing moved" check: it
        hears `adverts` more of the master's adverts (each a Master_Down it could have
        let expire) and never becomes master meanwhile; by its own counters, not by a
        guessed time (a director needs --dump-dir)."""
        before = self.stat("become_master")
        self.wait_adverts(adverts, timeout)
        assert self.stat("become_master") == before, f"{self.kind} on {self.host} became master"


_KA_STATS = {("Advertisements", "Received"): "advert_rcvd",
             ("Advertisements", "Sent"): "advert_sent",
             ("", "Became master"): "become_master", ("", "Released master"): "release_master",
             ("Priority Zero", "Received"): "pri_zero_rcvd",
             ("Priority Zero", "Sent"): "pri_zero_sent"}


def _keepalived_stats(path: str) -> list[dict[str, int]] | None:
    """The instances of a keepalived.stats file, or None while it is absent or not
    complete (every instance ends with its 'Priority Zero' Sent line)."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return None
    out: list[dict[str, int]] = []
    section = ""
    for line in text.splitlines():
        if line.startswith("VRRP Instance:"):
            out.append({})
            section = ""
            continue
        name, _, value = line.strip().partition(":")
        if not value.strip():  # a heading: "  Advertisements:"
            section = name
            continue
        if line.startswith("  ") and not line.startswith("    "):
            section = ""  # a top-level counter of the instance: "  Became master: 0"
        key = _KA_STATS.get((section, name))
        if key is not None and out:
            out[-1][key] = int(value)
    if not out or any(len(i) != len(_KA_STATS) for i in out):
        return None
    return out


class AddrMonitor:
    """`ip monitor address` in a namespace. It is proven subscribed, and proven to see
    deletions, before the window starts (a probe address added and deleted on lo);
    `events` closes the window with a second probe, so every event before it is in."""

    def __init__(self, lan: Lan, host: str) -> None:
        self.lan, self.host = lan, host
        self.proc = subprocess.Popen(["ip", "-n", lan.ns[host], "-o", "monitor", "address"],
                                     stdout=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._probe("127.0.0.91")
        self.start = len(self.lines)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def _probe(self, address: str) -> None:
        """Add and delete `address` on lo until the monitor has shown both (the first
        try can come before `ip monitor` has subscribed)."""
        def seen() -> bool:
            self.lan.run(self.host, "ip", "addr", "add", f"{address}/32", "dev", "lo")
            self.lan.run(self.host, "ip", "addr", "del", f"{address}/32", "dev", "lo")
            try:
                wait_for(lambda: any(x.startswith("Deleted") and f" {address}/" in x
                                     for x in self.lines), 1, what="probe")
            except AssertionError:
                return False
            return True
        wait_for(seen, 15, step=0.01, what=f"ip monitor in {self.host} to show a probe "
                 "address added and deleted")

    def events(self) -> list[str]:
        """The address events since the monitor started (probes left out)."""
        self._probe("127.0.0.92")
        self.proc.terminate()
        self.proc.wait(5)
        return [x for x in self.lines[self.start:]
                if "inet" in x and " 127.0.0.9" not in x]


class Lan(Hosts):
    """`hosts`: names, numbered 1, 2, ... in order, or a mapping name -> host number N;
    host N gets {net}.N/24 and {net6}N/64."""

    def __init__(self, hosts: tuple[str, ...] | dict[str, int] = ("a", "b", "c"),
                 show_logs: bool = True, net: str = "10.9.0", net6: str = "fd00:9::") -> None:
        super().__init__()
        self.show_logs, self.net, self.net6 = show_logs, net, net6
        self.procs: list[subprocess.Popen[str]] = []  # helpers (SMTP sinks), killed at close
        self.daemons: list[Daemon] = []
        self.sw = self.add_ns("sw")
        self.bridge("sw", "br0", "mcast_snooping", "0")
        numbered = hosts if isinstance(hosts, dict) else {h: n for n, h in
                                                          enumerate(hosts, start=1)}
        for host, n in numbered.items():
            self.add_host(host, n)

    def add_host(self, host: str, n: int) -> None:
        self.add_ns(host)
        for key in ("all", "default"):
            self.sysctl(host, f"net.ipv6.conf.{key}.accept_dad", "0")
        self.plug(host, "eth0", "sw", "br0", self.port(host))
        self.run(host, "ip", "addr", "add", f"{self.net}.{n}/24", "dev", "eth0")
        self.run(host, "ip", "addr", "add", f"{self.net6}{n}/64", "dev", "eth0", "nodad")
        wait_for(lambda: "fe80" in self.run(host, "ip", "-6", "addr", "show", "dev",
                                            "eth0").stdout, 10, what=f"{host} link-local")

    def port(self, host: str) -> str:
        """`host`'s end of its link on the switch (in namespace "sw")."""
        return f"p{self.prefix[3:]}{host}"[:15]

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
        """Start nginx in `host` answering `body` on port 80 (IPv4 and IPv6)."""
        self.serve_nginx(host, answer_server(body, v6=True), connections=1024)

    def nginx_stop(self, host: str) -> None:
        self.halt_nginx(host)

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
        # 'ready' once the capture socket is open (scapy's started_callback), not a guess
        code = ("import sys, time\nfrom scapy.all import ARP, AsyncSniffer\n"
                "s = AsyncSniffer(iface='eth0', lfilter=lambda p: ARP in p, store=True,\n"
                "                 started_callback=lambda: print('ready', flush=True))\n"
                "s.start()\n"
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
        super().close()


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
