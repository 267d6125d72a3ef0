"""`make demo`: scenario 001 (an LVS-NAT director pair) built in network namespaces.

    clients 10.30.0.9-11 --[wan]-- dir1 / dir2 (director -f, VIP 10.30.0.100) --[lan]--
        nginx real servers 192.168.3.1-3 (default gateway: VIP 192.168.3.253)

Two `director -f conf/examples/001-lvs-nat-{master,backup}.conf` processes, three nginx,
a client printing which server answered (from three addresses: with the example's
persistence_timeout 50 each address sticks to one real server); then the master node
dies (director SIGKILLed, its links cut) and the backup serves. Prints a timeline and the
failed requests. Needs root and IPVS (`make demo` runs it in the VM when the host kernel
has none). Everything made here is removed at the end, also on failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nat_pair import EXAMPLES, GATEWAY, VIP, NatPair, WaitTimeout, wait_for  # noqa: E402

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
        for src in net.clients:
            answers = [net.get(src, timeout=3) or "FAILED" for _ in range(3)]
            say(f"client {src}, 3 requests: {' '.join(answers)}  (persistence_timeout 50)")
        client = subprocess.Popen(["ip", "netns", "exec", net.ns["client"], sys.executable,
                                   "-c", CLIENT, "30", *net.clients], stdout=subprocess.PIPE,
                                  text=True)
        # the client's interpreter starts slowly under emulation: kill once it has been
        # served five times (about a second of traffic before the kill in the timeline)
        assert client.stdout is not None
        first = [client.stdout.readline() for _ in range(5)]
        if not all(first):
            raise WaitTimeout("the client ended before its first five requests")
        t_kill = time.time()
        net.kill_node("dir1")
        say("killed dir1 (SIGKILL to director, links down): the master node is gone")
        wait_for(lambda: net.holds("dir2") and net.holds("dir2", GATEWAY), 30,
                 what="dir2 to take the VIPs")
        t_moved = time.time()
        say(f"dir2 holds both VIPs, {t_moved - t_kill:.2f} s after the kill")
        out = [x.rstrip("\n") for x in first] + client.communicate(timeout=60)[0].splitlines()
        failed = [x for x in out if "FAILED" in x]
        after = [x.split()[2] for x in out if float(x.split()[0]) > t_moved + 1
                 and "FAILED" not in x]
        say(f"client: {len(out)} requests, {len(failed)} failed (1 s timeout each); "
            f"after the failover: {' '.join(after[:6])} ...")
        for line in out:
            t, rest = line.split(" ", 1)
            if -2 < float(t) - t_kill < 6:
                print(f"    {float(t) - t_kill:+6.2f}s  {rest}")
        ok = len(failed) <= 10 and bool(after)
        say("demo done" if ok else "demo: the backup did not serve")
        return 0 if ok else 1
    except WaitTimeout as e:
        say(f"demo: {e}")
        for host in ("dir1", "dir2"):
            print(f"==== {host}\n{net.log(host)[-3000:]}")
        return 1
    finally:
        if client is not None and client.poll() is None:
            client.kill()
        net.close()


if __name__ == "__main__":
    sys.exit(main())
