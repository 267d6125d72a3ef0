"""Active-active directors behind ECMP, announced with BGP (issue 14), in namespaces:

    client 10.50.0.2 --[wan]-- router 10.50.0.1 (BIRD2, AS 65000, ECMP: merge paths,
        L4 multipath hash) 10.40.0.1 --[lan]-- dir1-3 10.40.0.11-13 (AS 65010,
        VIP 10.30.0.100 on lo, announced as 10.30.0.100/32 next-hop self)
                                      --[lan]-- nginx rs1-3 10.40.0.21-23 (VIP on lo,
        arp_ignore 1 / arp_announce 2, default route via the router: DR replies go
        straight back to the client)

Each director runs `director -f` with `bgp_speaker` (ExaBGP) and a DR `mh` (`mh-port`)
virtual server over the same three real servers in the same order, with
`net.ipv4.vs.sloppy_tcp=1`: any director that receives a flow, even mid-stream after
the router rehashed it, sends it to the same real server.

`static=True` leaves BGP out of director: a plain ExaBGP with a static route announces
the VIP from each director namespace instead (the router side without director's
speaker; without IPVS, nginx answers on the VIP in the director namespaces).

The client is one asyncio process (tools/scaleout_client.py) driven over its stdin.
The scenarios (`spread`, `pool_fails`, `node_dies`, `node_stops`) are shared by the
kernel test, `make demo-scaleout` and bench/scaleout.py: they measure and log a
timeline; the callers judge. Needs root. `close` removes everything, also on failure.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import attrs

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bird import bird_conf  # noqa: E402
from nat_pair import NatPair  # noqa: E402
from nettopo import WaitTimeout, sh, slow_site, wait_for  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
VIP = "10.30.0.100"
CLIENT = "10.50.0.2"
ROUTER_WAN = "10.50.0.1"
ROUTER_LAN = "10.40.0.1"
HOLD = 3  # BGP hold time (s), both ends
DIRS = ("dir1", "dir2", "dir3")
RSS = ("rs1", "rs2", "rs3")
SIZE = 200_000  # bytes per slow download
RATE = "8k"  # per connection: about 25 s per download


def dir_ip(host: str) -> str:
    return f"10.40.0.1{host[-1]}"


def rs_ip(host: str) -> str:
    return f"10.40.0.2{host[-1]}"


def director_conf(host: str, hold: int = HOLD) -> str:
    """One director's keepalived.conf: the speaker and the DR mh service. mh's table
    depends on the order of the real servers in the kernel: the same order in every
    config, and `inhibit_on_failure` so that a failed one keeps its place (weight 0)
    instead of coming back last, in whatever order the checks succeed."""
    real = "".join(f"""
    real_server {rs_ip(rs)} 80 {{
        inhibit_on_failure
        TCP_CHECK {{
            connect_timeout 1
            retry 0
        }}
    }}""" for rs in RSS)
    return f"""
bgp_speaker {{
    router_id {dir_ip(host)}
    local_as 65010
    neighbor {ROUTER_LAN} {{
        remote_as 65000
        hold_time {hold}
    }}
    engine exabgp
}}
virtual_server {VIP} 80 {{
    delay_loop 1
    lb_algo mh
    mh-port
    lb_kind DR
    protocol TCP
    bgp_announce dev lo
{real}
}}
"""


def static_conf(host: str) -> str:
    """Without director's speaker: the same conf with no BGP keywords (and a plain
    ExaBGP beside it, see `exabgp_conf`)."""
    text = director_conf(host)
    start = text.index("bgp_speaker")
    text = text[:start] + text[text.index("virtual_server"):]
    return text.replace("    bgp_announce dev lo\n", "")


def exabgp_conf(host: str) -> str:
    return f"""
neighbor {ROUTER_LAN} {{
    router-id {dir_ip(host)};
    local-address {dir_ip(host)};
    local-as 65010;
    peer-as 65000;
    hold-time {HOLD};
    static {{ route {VIP}/32 next-hop self; }}
}}
"""


def router_conf(hold: int = HOLD) -> str:
    """The router's BIRD: a session per director, quick to come back (keepalive and
    connect retry 1 s), the VIP's routes merged into one ECMP kernel route."""
    return bird_conf(ROUTER_LAN, 65000, {d: (dir_ip(d), 65010) for d in DIRS}, hold=hold,
                     local_address=ROUTER_LAN, keepalive=1, connect_retry=1,
                     error_wait=(1, 3))


@attrs.frozen
class Downloads:
    """How the slow downloads through the VIP ended."""
    started: int
    complete: int
    failed: list[str]

    @property
    def kept(self) -> float:
        return self.complete / self.started if self.started else 0.0


@attrs.frozen
class Outage:
    """One director leaving (killed or stopped), seen from the router and the client."""
    host: str
    carried: int  # downloads whose flow went through it just before
    withdrawn_after: float  # s from the event to the router's route losing it
    alive_at_withdraw: bool  # its director still running when the route lost it
    gap: float  # s from the event to the start of the last new connection that failed
    # or whose first SYN went unanswered
    probes: int
    probe_failures: int  # failed outright (before or after the event)
    downloads: Downloads
    failures: list[str] = attrs.field(factory=list)  # disturbed probes: when (s), why


class ScaleOut(NatPair):
    """The namespaces above; director processes started, logged and stopped by NatPair."""

    def __init__(self, prefix: str = "so", static: bool = False,
                 say: Callable[[str], None] = print, sloppy_tcp: bool = True) -> None:
        super().__init__(prefix)
        self.static = static
        self.sloppy_tcp = sloppy_tcp
        self.say = say
        self.procs: dict[str, subprocess.Popen[bytes]] = {}  # bird, exabgp
        self.client: subprocess.Popen[str] | None = None
        self.ipvs = (os.path.exists("/proc/net/ip_vs")
                     or sh("modprobe", "-q", "ip_vs", check=False).returncode == 0)

    # -- building ---------------------------------------------------------------------
    def build(self) -> ScaleOut:
        """The namespaces, links, addresses and routes in a few `ip -batch` runs (each
        process start costs a second or so under emulation), then nginx and BIRD."""
        hosts = ("sw", "client", "router", *DIRS, *RSS)
        self._batch(None, [f"netns add {self.prefix}-{h}" for h in hosts])
        self.ns.update({h: f"{self.prefix}-{h}" for h in hosts})
        # (host, its interface, bridge, address)
        links = [("client", "eth0", "wan", CLIENT), ("router", "eth1", "wan", ROUTER_WAN),
                 ("router", "eth0", "lan", ROUTER_LAN)]
        links += [(h, "eth0", "lan", dir_ip(h) if h in DIRS else rs_ip(h))
                  for h in (*DIRS, *RSS)]
        sw = ["link set lo up", "link add wan type bridge", "link add lan type bridge",
              "link set wan up", "link set lan up"]
        for host, ifname, br, _ in links:
            port = f"{host}{br[0]}"
            sw += [f"link add {port} type veth peer name {ifname} netns {self.ns[host]}",
                   f"link set {port} master {br} up"]
        self._batch("sw", sw)
        for host in hosts[1:]:
            cmds = ["link set lo up"]
            for h, ifname, _, addr in links:
                if h == host:
                    cmds += [f"addr add {addr}/24 dev {ifname}", f"link set {ifname} up"]
            if host != "router":
                gateway = ROUTER_WAN if host == "client" else ROUTER_LAN
                cmds.append(f"route add default via {gateway}")
            if host in RSS:
                cmds.append(f"addr add {VIP}/32 dev lo")
            self._batch(host, cmds)
            keys = ["net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"]
            if host == "router":  # ECMP hashed on the L4 ports too
                keys += ["net.ipv4.ip_forward=1", "net.ipv4.fib_multipath_hash_policy=1"]
            if host in DIRS or host in RSS:  # the VIP on lo: never answered for in ARP
                keys += ["net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2"]
            if host in DIRS and self.ipvs:
                # a director that gets a flow mid-stream (after a rehash) takes it up
                keys.append(f"net.ipv4.vs.sloppy_tcp={int(self.sloppy_tcp)}")
            self.run(host, "sysctl", "-qw", *keys)
        for host in RSS:
            self.slow_nginx(host, host)
        self._spawn("routes", "router", ["ip", "-ts", "monitor", "route"])
        self._spawn("links", "sw", ["ip", "-ts", "monitor", "link"])
        self.start_bird()
        return self

    def _batch(self, host: str | None, cmds: list[str]) -> None:
        """`ip -batch` in `host` (None: here), failing on the first error."""
        ns = ["-n", self.ns[host]] if host else []
        sh("ip", *ns, "-batch", "-", input="\n".join(cmds) + "\n")

    def slow_nginx(self, host: str, body: str) -> None:
        """nginx in `host`: "<body>" at /, a big file at /big sent at RATE."""
        d = self.nginx_dir(host)
        conf = slow_site(d, body, SIZE, RATE, connections=1024)
        self.run(host, "nginx", "-c", conf, "-p", d)
        if host not in self.nginx_hosts:
            self.nginx_hosts.append(host)

    def _spawn(self, name: str, host: str, cmd: list[str],
               env: dict[str, str] | None = None) -> None:
        with open(os.path.join(self.dir, f"{name}.log"), "wb") as log:
            self.procs[name] = subprocess.Popen(
                ["ip", "netns", "exec", self.ns[host], *cmd], stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, **(env or {})})

    def start_bird(self) -> None:
        conf = os.path.join(self.dir, "bird.conf")
        with open(conf, "w") as f:
            f.write(router_conf())
        self._spawn("bird", "router", ["bird", "-f", "-c", conf, "-s", self.bird_sock,
                                       "-P", os.path.join(self.dir, "bird.pid")])

    @property
    def bird_sock(self) -> str:
        return os.path.join(self.dir, "bird.ctl")

    # -- directors --------------------------------------------------------------------
    def start_directors(self, hosts: tuple[str, ...] = DIRS) -> None:
        for host in hosts:
            path = os.path.join(self.dir, f"{host}.conf")
            with open(path, "w") as f:
                f.write(static_conf(host) if self.static else director_conf(host))
            if not self.ipvs:  # the BGP side alone: the director node answers itself
                self.slow_nginx(host, host)
            if self.static:
                self.run(host, "ip", "addr", "add", f"{VIP}/32", "dev", "lo")
                self.start_exabgp(host)
            if self.ipvs or not self.static:  # without IPVS director runs --dry-run
                self.start_director(host, path)

    def start_exabgp(self, host: str) -> None:
        conf = os.path.join(self.dir, f"exabgp-{host}.conf")
        with open(conf, "w") as f:
            f.write(exabgp_conf(host))
        env = {"exabgp.daemon.user": "root", "exabgp.daemon.daemonize": "false",
               "exabgp.log.destination": "stdout", "exabgp.api.cli": "false"}
        self._spawn(f"exabgp-{host}", host, ["exabgp", conf],
                    env={k.replace(".", "_"): v for k, v in env.items()})

    def _group(self, host: str) -> list[int]:
        """Process groups that make up the director node `host`."""
        procs = [self.directors.get(host), self.procs.get(f"exabgp-{host}")]
        return [p.pid for p in procs if p is not None and p.poll() is None]

    def kill_node(self, host: str) -> None:
        """The node dies: its link goes down first (a crash sends no BGP notification
        nor TCP FIN), then every process in its namespace is SIGKILLed (the director,
        its children, its ExaBGP: all started here)."""
        self.run(host, "ip", "link", "set", "eth0", "down")
        if host in self.nginx_hosts:  # (no IPVS: it served itself) it dies with the node
            self.nginx_hosts.remove(host)
        for pid in sh("ip", "netns", "pids", self.ns[host]).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass  # gone meanwhile
        wait_for(lambda: not self._group(host), 10, 0.05, f"{host}'s processes to die")

    def stop_node(self, host: str) -> None:
        """SIGTERM to the director's parent only, as `kill $(cat pidfile)` or systemd
        with KillMode=process (static: ExaBGP first, which withdraws as it closes its
        session, then the director)."""
        if self.static:
            exa = self.procs[f"exabgp-{host}"]
            os.kill(exa.pid, signal.SIGTERM)
            exa.wait(60)
        if host in self.directors:
            os.kill(self.directors[host].pid, signal.SIGTERM)

    def block_pool(self, host: str, on: bool) -> None:
        """`host` no longer reaches the real servers (or again): its checks fail; the
        other directors and the DR traffic (to the VIP) are not touched."""
        if on:
            rule = ("table inet scaleout {\n chain out {\n type filter hook output priority 0;"
                    f" ip daddr {{ {', '.join(rs_ip(r) for r in RSS)} }} tcp dport 80 drop;\n"
                    " }\n}\n")
            sh("ip", "netns", "exec", self.ns[host], "nft", "-f", "-", input=rule)
        else:
            self.run(host, "nft", "delete", "table", "inet", "scaleout")

    # -- what the router and the directors show ----------------------------------------
    def next_hops(self) -> list[str]:
        """The gateways of the router's kernel route to the VIP (BGP via BIRD)."""
        out = self.run("router", "ip", "-4", "route", "show", f"{VIP}/32",
                       check=False).stdout
        return sorted(w[w.index("via") + 1] for w in (line.split() for line in out.splitlines())
                      if "via" in w)

    def route_changes(self) -> list[tuple[float, list[str]]]:
        """The router's route to the VIP as `ip -ts monitor route` saw it change: (wall
        time, its next hops; [] when deleted). Times come from the kernel's event, not
        from our polling (slow under emulation)."""
        from datetime import datetime

        events: list[tuple[float, list[str]]] = []
        with open(os.path.join(self.dir, "routes.log")) as f:
            text = f.read()
        for ev in text.split("\n["):
            head, _, rest = ev.lstrip("[").partition("] ")
            words = rest.split()
            if not words or VIP not in words[:2]:
                continue
            t = datetime.fromisoformat(head).timestamp()
            hops = [] if words[0] == "Deleted" else sorted(
                words[i + 1] for i, w in enumerate(words) if w == "via")
            events.append((t, hops))
        return events

    def carrier_lost(self, since: float, host: str) -> float:
        """When, after `since`, the switch saw `host`'s link lose its carrier (the node
        left the network; `ip netns exec ... link set down` itself takes a second or
        more to run under emulation)."""
        from datetime import datetime

        def seen() -> float | None:
            with open(os.path.join(self.dir, "links.log")) as f:
                for line in f:
                    head, _, rest = line.lstrip("[").partition("] ")
                    if f" {host}l@" in rest and "NO-CARRIER" in rest:
                        t = datetime.fromisoformat(head).timestamp()
                        if t >= since:
                            return t
            return None
        return wait_for(seen, 10, 0.1, f"the switch to see {host}'s link down")  # type: ignore

    def route_time(self, since: float, hosts: tuple[str, ...]) -> float:
        """When, after `since`, the router's route went through exactly `hosts`."""
        want = sorted(dir_ip(h) for h in hosts)
        return wait_for(lambda: next((t for t, hops in self.route_changes()
                                      if t >= since and hops == want), None),
                        10, 0.1, f"the route monitor's event for {hosts}")  # type: ignore

    def next_hops_hosts(self) -> list[str]:
        """The directors the router's route to the VIP goes through."""
        hops = self.next_hops()
        return [h for h in DIRS if dir_ip(h) in hops]

    def sessions(self) -> dict[str, str]:
        """BIRD's BGP sessions: name -> state (Established, Active, Connect...)."""
        out = sh("birdc", "-s", self.bird_sock, "show", "protocols", check=False).stdout
        return {f[0]: f[5] if len(f) > 5 else f[3] for f in (line.split() for line in
                out.splitlines()) if f and f[0] in DIRS}

    def hops_of(self, hosts: tuple[str, ...] | list[str]) -> Callable[[], bool]:
        want = sorted(dir_ip(h) for h in hosts)
        return lambda: self.next_hops() == want

    def flows(self, host: str) -> list[tuple[str, str, str]]:
        """IPVS connections in `host`: (state, client ip:port, real server)."""
        out = self.run(host, "ipvsadm", "-Lnc", check=False).stdout
        return [(f[2], f[3], f[5].split(":")[0]) for f in (line.split() for line in
                out.splitlines()) if len(f) >= 6 and f[0] == "TCP"]

    def scheduled(self, host: str) -> int:
        """Connections IPVS scheduled in `host` since the start (its stats)."""
        out = self.run(host, "ipvsadm", "-Ln", "--stats", "-t", f"{VIP}:80",
                       check=False).stdout
        return next((int(f[2]) for f in (line.split() for line in out.splitlines())
                     if len(f) > 2 and f[0] == "TCP"), 0)

    def ready(self, hosts: tuple[str, ...] = DIRS) -> bool:
        """Each director has the three real servers up (weight 1) in IPVS (or no IPVS
        at all)."""
        if not self.ipvs:
            return True
        for host in hosts:
            out = self.run(host, "ipvsadm", "-Ln", check=False).stdout
            if sum(1 for f in (line.split() for line in out.splitlines())
                   if len(f) >= 4 and f[2] == "Route" and f[3] == "1") != 3:
                return False
        return True

    def logged(self, host: str, text: str, since: float) -> float:
        """When `host`'s director first logged a line holding `text` at or after
        `since` (its log's own timestamps, same clock)."""
        from datetime import datetime

        def seen() -> float | None:
            for line in self.log(host).splitlines():
                if text in line:
                    t = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                    if t >= since - 0.001:  # the log has milliseconds
                        return t
            return None
        return wait_for(seen, 30, 0.2, f"{host} to log {text!r}")  # type: ignore

    def log_tail(self, name: str, n: int = 3000) -> str:
        try:
            if name in self.directors:
                return self.log(name)[-n:]
            with open(os.path.join(self.dir, f"{name}.log"), errors="replace") as f:
                return f.read()[-n:]
        except OSError as e:
            return str(e)

    # -- the client -------------------------------------------------------------------
    def ask(self, cmd: str, timeout: float = 120, **args: Any) -> Any:
        """One command to the client process; its JSON answer."""
        if self.client is None:
            self.client = subprocess.Popen(
                ["ip", "netns", "exec", self.ns["client"], sys.executable,
                 os.path.join(HERE, "scaleout_client.py"), VIP, CLIENT, str(SIZE)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.client.stdin is not None and self.client.stdout is not None
        self.client.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.client.stdin.flush()
        line = _readline(self.client.stdout, timeout, f"the client's answer to {cmd}")
        if not line:
            raise WaitTimeout(f"the client ended before answering {cmd}")
        return json.loads(line)

    def close(self) -> None:
        try:
            if self.client is not None and self.client.poll() is None:
                self.client.kill()
                self.client.wait(10)
            for p in self.procs.values():
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGTERM)
                    try:
                        p.wait(15)
                    except subprocess.TimeoutExpired:
                        os.killpg(p.pid, signal.SIGKILL)
                        p.wait(5)
        finally:
            super().close()


def _readline(stream: Any, timeout: float, what: str) -> str:
    import select

    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        raise WaitTimeout(f"timed out after {timeout}s waiting for {what}")
    return str(stream.readline())


# -- the scenarios ----------------------------------------------------------------------
T0 = time.time()


def stamp(t: float) -> str:
    return f"[{t - T0:6.1f}s]"


def bring_up(net: ScaleOut, timeout: float = 300) -> None:
    """Directors started; waits for three BGP sessions and three next hops."""
    net.start_directors()
    net.say(f"started {'ExaBGP (static route)' if net.static else 'director -f'} "
            f"in {', '.join(DIRS)}; waiting for the checkers and the BGP sessions")
    wait_for(lambda: net.ready(), timeout, 0.5, "3 real servers in each director's IPVS")
    wait_for(net.hops_of(DIRS), timeout, 0.2, "3 next hops on the router's route to the VIP")
    net.say(f"router: {VIP}/32 via {', '.join(net.next_hops())} (BIRD sessions: "
            f"{net.sessions()})")


def fetch(net: ScaleOut, ports: list[int]) -> dict[int, str]:
    """One request per client source port: port -> the body (the real server's name)."""
    got = net.ask("fetch", ports=ports)
    return {int(k): v for k, v in got.items()}


def via(net: ScaleOut, hosts: tuple[str, ...]) -> dict[int, str]:
    """Client port -> the director whose IPVS table holds its connection."""
    out: dict[int, str] = {}
    for host in hosts:
        for _, client, _ in net.flows(host):
            ip, port = client.rsplit(":", 1)
            if ip == CLIENT:
                out[int(port)] = host
    return out


def spread(net: ScaleOut, ports: list[int]) -> tuple[dict[int, str], dict[int, str],
                                                     dict[str, int]]:
    """Requests from `ports`: which real server answered each, which director took it
    (from the IPVS connection tables, where entries may have expired), and how many
    connections each director's IPVS counted."""
    before = {h: net.scheduled(h) for h in DIRS}
    bodies = fetch(net, ports)
    directors = via(net, DIRS) if net.ipvs else {}
    def counted() -> dict[str, int] | None:
        got = {h: net.scheduled(h) - before[h] for h in DIRS}
        return got if sum(got.values()) >= len(ports) else None
    # the kernel folds its per-CPU counters into what ipvsadm reads every 2 s
    conns: dict[str, int] = {h: 0 for h in DIRS}
    try:
        if net.ipvs:
            conns = wait_for(counted, 10, 0.5, "IPVS stats to count the requests")  # type: ignore
    except WaitTimeout:
        conns = {h: net.scheduled(h) - before[h] for h in DIRS}  # the test says what is wrong
    net.say(f"{len(ports)} requests from as many source ports: real servers "
            f"{dict(sorted(Counter(bodies.values()).items()))}, connections per director "
            f"(IPVS stats) {conns}")
    return bodies, directors, conns


@attrs.frozen
class PoolLoss:
    """One director's real servers unreachable from it, then reachable again."""
    detected: float  # s from the drop to its checker's "Lost quorum"
    withdrawn: float  # s from the drop to the router's route without it
    back: float  # s from the drop's removal to the route with it again
    bodies: dict[int, str]  # the answers meanwhile, per client source port

    @property
    def after_quorum(self) -> float:
        """s from the quorum lost to the route without it: the BGP part."""
        return self.withdrawn - self.detected


def pool_fails(net: ScaleOut, host: str, ports: list[int]) -> PoolLoss:
    """`host`'s checks fail: when it withdraws, what `ports` reach meanwhile, when it
    announces again once the real servers are reachable again."""
    others = tuple(d for d in DIRS if d != host)
    t = time.time()
    net.block_pool(host, True)
    net.say(f"{host} can no longer reach any real server (nft drop in its namespace)")
    wait_for(net.hops_of(others), HOLD + 30, 0.05, f"the router's route without {host}")
    gone = net.route_time(t, others) - t
    detected = net.logged(host, "Lost quorum", t) - t
    net.say(f"{host}'s checker lost quorum {detected:.2f} s later (delay_loop 1, "
            f"connect_timeout 1); the router's route lost {host} {gone - detected:.2f} s "
            f"after that; route via {', '.join(net.next_hops())}")
    bodies = fetch(net, ports)
    net.say(f"{len(ports)} requests again (same source ports) while {host} is out: "
            f"real servers {dict(sorted(Counter(bodies.values()).items()))}")
    t = time.time()
    net.block_pool(host, False)
    wait_for(net.hops_of(DIRS), HOLD + 30, 0.05, f"{host} announced again")
    back = net.route_time(t, DIRS) - t
    net.say(f"{host} reaches its real servers again: announced {back:.2f} s later")
    return PoolLoss(detected, gone, back, bodies)


def outage(net: ScaleOut, host: str, kill: bool, n: int = 300) -> Outage:
    """`n` slow downloads through the VIP and new connections every 50 ms; then `host`
    dies (kill) or is stopped (SIGTERM). Returns what the router and client saw."""
    before = tuple(net.next_hops_hosts())
    after = tuple(h for h in before if h != host)
    got = net.ask("download", n=n, timeout=180)
    started, ports = got["established"], {f"{CLIENT}:{p}" for p in got["ports"]}
    net.say(f"{started} slow downloads established ({SIZE // 1000} kB at {RATE}/s each)")
    carried = sum(1 for state, client, _ in net.flows(host) if state == "ESTABLISHED"
                  and client in ports)
    net.ask("probe_start", interval=0.05)
    probe_warm = wait_for(lambda: net.ask("probe_count")["n"] >= 10, 30, 0.2,
                          "10 new-connection probes before the event")
    assert probe_warm
    t = time.time()
    if kill:
        net.kill_node(host)
        t = net.carrier_lost(t, host)
        net.say(f"{host} killed: links down, SIGKILL (it carried {carried} downloads)")
    else:
        net.stop_node(host)
        net.say(f"{host} sent SIGTERM (it carried {carried} downloads)")
    wait_for(net.hops_of(after), HOLD + 30, 0.05, f"the router's route without {host}")
    withdrawn = net.route_time(t, after) - t
    proc = net.directors.get(host) or net.procs[f"exabgp-{host}"]
    alive = proc.poll() is None
    net.say(f"router: {host} gone from the route {withdrawn:.2f} s after; via "
            f"{', '.join(net.next_hops())}; its director "
            f"{'still running' if alive else 'gone'}")
    if not kill:
        wait_for(lambda: net.directors[host].poll() is not None if host in net.directors
                 else net.procs[f"exabgp-{host}"].poll() is not None, 60, 0.1,
                 f"{host}'s director to exit")
        net.say(f"{host}'s director exited (rc {_rc(net, host)}), "
                f"{time.time() - t:.2f} s after the signal")
    wait_for(lambda: time.time() > t + HOLD + 2, HOLD + 5, 0.1,
             "new connections to keep probing past the hold time")
    probes = net.ask("probe_stop")["probes"]
    failed = [p for p in probes if not p[1]]
    # disturbed: failed, or its first SYN went unanswered (the kernel retransmitted it)
    hit = [p for p in probes if p[0] >= t and (not p[1] or p[3])]
    gap = max(p[0] - t for p in hit) if hit else 0.0
    why = [f"{p[0] - t:+.2f} s: {p[2] if not p[1] else 'SYN retransmitted'}" for p in hit]
    net.say(f"new connections: {len(probes)} tried, {len(failed)} failed, "
            f"{len(hit)} failed or needed a second SYN after the event, the last one "
            f"started {gap:.2f} s after it {why}")
    res = net.ask("download_wait", timeout=240)
    d = Downloads(started, res["complete"], res["failed"])
    net.say(f"downloads: {d.complete} of {d.started} complete ({100 * d.kept:.1f}%); "
            f"failed: {Counter(d.failed).most_common(3)}")
    return Outage(host, carried, withdrawn, alive, gap, len(probes), len(failed), d,
                  why)


def _rc(net: ScaleOut, host: str) -> int | None:
    p = net.directors.get(host) or net.procs.get(f"exabgp-{host}")
    return p.poll() if p else None


@attrs.frozen
class Run:
    """The four steps' figures, for the demo and the benchmark."""
    spread_servers: dict[str, int]
    spread_directors: dict[str, int]
    pool: PoolLoss
    same_server: int  # of len(ports): the same real server with one director out
    kill: Outage
    stop: Outage


def run_all(net: ScaleOut, ports: list[int], n: int = 300) -> Run:
    """Up, spread, dir1's pool lost and back, dir3 killed, dir2 stopped."""
    bring_up(net, 400)
    bodies, directors, conns = spread(net, ports)
    pool = pool_fails(net, "dir1", ports)
    same = sum(1 for p in ports if pool.bodies.get(p) == bodies[p])
    net.say(f"{same} of {len(ports)} source ports reached the same real server as before, "
            f"{sum(1 for d in directors.values() if d == 'dir1')} of them through another "
            "director than the first time")
    kill = outage(net, "dir3", kill=True, n=n)
    stop = outage(net, "dir2", kill=False, n=n)
    return Run(dict(Counter(bodies.values())), conns, pool, same, kill, stop)
