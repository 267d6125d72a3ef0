"""`make demo`: scenario 001 (an LVS-NAT director pair) built in network namespaces.

    clients 10.30.0.9-11 --[wan]-- dir1 / dir2 (director -f, VIP 10.30.0.100) --[lan]--
        nginx real servers 192.168.3.1-3 (default gateway: VIP 192.168.3.253)

Two `director -f conf/examples/001-lvs-nat-{master,backup}.conf` processes, three nginx,
a client printing which server answered (from three addresses: with the example's
persistence_timeout 50 each address sticks to one real server) and a slow download
(nginx limit_rate); the examples' lvs_sync_daemon copies the master's connections and
persistence entries to the backup. Then the master node dies (director SIGKILLed, its
links cut) and the backup serves: each client address keeps its real server, and the
download, started before the kill, completes intact. Prints a timeline, the failed
requests and the download's figures. Needs root and IPVS (`make demo` runs it in the VM
when the host kernel has none). Everything made here is removed at the end, also on
failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nat_pair import (  # noqa: E402
    EXAMPLES,
    GATEWAY,
    SLOW_RATE,
    SLOW_SIZE,
    VIP,
    Download,
    NatPair,
    WaitTimeout,
    wait_for,
)

T0 = time.monotonic()


def say(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


CLIENT = r"""
import socket, sys, time
end = time.monotonic() + float(sys.argv[1])
sources = sys.argv[2:]
n = 0
while time.monotonic() < end:
    src = sources[n % len(sources)]
    n += 1
    t = time.time()
    try:
        s = socket.create_connection(("10.30.0.100", 80), timeout=1, source_address=(src, 0))
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        body = data.split(b"\r\n\r\n", 1)[1].decode().strip()
    except Exception as e:
        body = "FAILED " + type(e).__name__
    print(f"{t:.3f} {src} {body}", flush=True)
    time.sleep(0.2)
"""


def main() -> int:
    if os.geteuid() != 0:
        print("demo: needs root (network namespaces, IPVS)", file=sys.stderr)
        return 2
    net = NatPair("demo", clients=3)
    client: subprocess.Popen[str] | None = None
    dl: Download | None = None
    try:
        say("building: a client (3 addresses), two directors, three nginx real servers "
            "(namespaces)")
        net.build()
        net.start_director("dir1", f"{EXAMPLES}/001-lvs-nat-master.conf")
        net.start_director("dir2", f"{EXAMPLES}/001-lvs-nat-backup.conf")
        say("started director -f 001-lvs-nat-master.conf on dir1, "
            "-backup.conf on dir2; waiting for the election and the checkers")
        wait_for(lambda: net.holds("dir1") and net.holds("dir1", GATEWAY), 180,
                 what="dir1 to become master")
        say(f"dir1 is MASTER: VIPs {VIP} and {GATEWAY} on dir1")
        wait_for(lambda: len(net.dests("dir1")) == 3, 180,
                 what="three real servers in dir1's table")
        say("dir1's IPVS table:\n" + net.run("dir1", "ipvsadm", "-Ln").stdout.rstrip())
        wait_for(lambda: "master sync daemon" in net.daemons("dir1")
                 and "backup sync daemon" in net.daemons("dir2"), 60,
                 what="the sync daemons (lvs_sync_daemon eth0 VI_1): MASTER on dir1, "
                      "BACKUP on dir2")
        say("lvs_sync_daemon follows VI_1: dir1 (MASTER) sends its connections on eth0, "
            "dir2 (BACKUP) receives them:\n"
            f"    dir1: {net.daemons('dir1').strip()}\n    dir2: {net.daemons('dir2').strip()}")
        vs = net.run("dir2", "sysctl", "-n", "net.ipv4.vs.sloppy_tcp",
                     "net.ipv4.vs.conntrack").stdout.split()
        loose = net.run("dir2", "sysctl", "-n", "net.netfilter.nf_conntrack_tcp_loose",
                        check=False).stdout.strip()
        say(f"dir2: net.ipv4.vs.sloppy_tcp={vs[0]}, net.ipv4.vs.conntrack={vs[1]}, "
            + (f"nf_conntrack loaded (tcp_loose={loose})" if loose else "no nf_conntrack")
            + ": after the failover dir2 forwards established connections from the "
              "synced entries alone")
        before: dict[str, str] = {}
        for src in net.clients:
            answers = [net.get(src, timeout=3) or "FAILED" for _ in range(3)]
            before[src] = answers[0] if len(set(answers)) == 1 else "MIXED"
            say(f"client {src}, 3 requests: {' '.join(answers)}  (persistence_timeout 50)")
        # the client's interpreter starts slowly under emulation: the download starts
        # once it has been served five times, the kill once dir2 holds the copies
        client = subprocess.Popen(["ip", "netns", "exec", net.ns["client"], sys.executable,
                                   "-c", CLIENT, "300", *net.clients], stdout=subprocess.PIPE,
                                  text=True)
        out: list[str] = []
        reader = threading.Thread(target=lambda: out.extend(client.stdout or ()), daemon=True)
        reader.start()
        wait_for(lambda: len(out) >= 5, 120, what="the client's first five requests")
        dl = Download(net, net.clients[0])
        wait_for(lambda: dl is not None and dl.progress, 60, what="the slow download to begin")
        say(f"slow download started from {dl.source}:{dl.port}: {dl.size} bytes from "
            f"{dl.server} at nginx limit_rate {SLOW_RATE >> 10} KiB/s")
        entries = wait_for(lambda: net.synced("dir2", net.clients, dl), 60,
                           what="dir2 to hold, synced from dir1, the 3 clients' persistence "
                                "templates and the download's connection")
        assert isinstance(entries, list)
        say("dir2 (BACKUP) holds copies of dir1's entries:\n" + "\n".join(
            f"    {st:11} {cl:18} -> {rs}" + ("  (persistence template)"
                                              if cl.endswith(":0") else "  (the download)")
            for st, cl, rs in sorted(entries)))
        if dl.end:
            raise WaitTimeout(f"the download ended before the kill ({dl.end}): too fast")
        t_kill, at_kill = time.time(), dl.received
        net.kill_node("dir1")
        say(f"killed dir1 (SIGKILL to director, links down): the master node is gone; "
            f"the download had {at_kill} of {dl.size} bytes")
        wait_for(lambda: net.holds("dir2") and net.holds("dir2", GATEWAY), 30,
                 what="dir2 to take the VIPs")
        t_moved = time.time()
        say(f"dir2 holds both VIPs, {t_moved - t_kill:.2f} s after the kill")
        wait_for(lambda: "master sync daemon" in net.daemons("dir2"), 30,
                 what="dir2's sync daemon to turn MASTER")
        say("dir2's sync daemon is now the MASTER one")
        wait_for(lambda: dl is not None and dl.end, 120, what="the slow download to end")

        def served_after() -> bool:  # every address served twice after the failover
            late = [x.split() for x in list(out) if float(x.split()[0]) > t_moved + 1]
            return all(sum(1 for f in late if f[1] == src and f[2] != "FAILED") >= 2
                       for src in net.clients)

        wait_for(served_after, 60, what="two answers to each client address after the "
                                        "failover")
        client.terminate()
        client.wait(10)
        reader.join(10)
        out = [x.rstrip("\n") for x in out]
        failed = [x for x in out if "FAILED" in x]
        after: dict[str, set[str]] = {src: set() for src in net.clients}
        for x in out:
            t, src, body = x.split(" ", 2)
            if float(t) > t_moved + 1 and "FAILED" not in body:
                after[src].add(body)
        kept = [src for src in net.clients if after[src] == {before[src]}]
        say(f"client: {len(out)} requests, {len(failed)} failed (1 s timeout each)")
        for src in net.clients:
            say(f"client {src}: {before[src]} before the failover, "
                f"{' '.join(sorted(after[src])) or 'nothing'} after")
        say(f"persistence kept: {len(kept)}/{len(net.clients)} client addresses")
        for line in out:
            t, rest = line.split(" ", 1)
            if -2 < float(t) - t_kill < 6:
                print(f"    {float(t) - t_kill:+6.2f}s  {rest}")
        got = int(dl.end[2]) if dl.end[0] == "DONE" else dl.received
        intact = dl.end[0] == "DONE" and got == dl.size == SLOW_SIZE \
            and dl.end[3] == net.slow_sha256
        stall, since = dl.longest_stall()
        say(f"slow download: {' '.join(dl.end[:1] + dl.end[4:])} {got} of {dl.size} bytes "
            f"from {dl.server}, sha256 {'matches' if intact else 'DIFFERS'}; "
            f"{at_kill} bytes before the kill; longest stall {stall:.1f} s from "
            f"{since - t_kill:+.1f} s; ended {float(dl.end[1]) - t_kill:+.1f} s after the kill")
        ok = len(failed) <= 10 and len(kept) == len(net.clients) and intact
        say("demo done" if ok else "demo: the failover lost a client's server or the download")
        return 0 if ok else 1
    except WaitTimeout as e:
        say(f"demo: {e}")
        for host in ("dir1", "dir2"):
            print(f"==== {host}\n{net.log(host)[-3000:]}")
        return 1
    finally:
        if client is not None and client.poll() is None:
            client.kill()
        if dl is not None:
            dl.close()
        net.close()


if __name__ == "__main__":
    sys.exit(main())
