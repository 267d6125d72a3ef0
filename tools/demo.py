"""`make demo`: scenario 001 (an LVS-NAT director pair) built in network namespaces.

    client 10.30.0.9 --[wan]-- dir1 / dir2 (director -f, VIP 10.30.0.100) --[lan]--
        nginx real servers 192.168.3.1-3 (default gateway: VIP 192.168.3.253)

Two `director -f conf/examples/001-lvs-nat-{master,backup}.conf` processes, three nginx,
a client printing which server answered; then the master node dies (director SIGKILLed,
its links cut) and the backup serves. Prints a timeline and the failed requests. Needs
root and IPVS (`make demo` runs it in the VM when the host kernel has none). Everything
made here is removed at the end, also on failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIRECTOR = os.path.join(ROOT, ".venv", "bin", "director")
P = "demo"
NS = {n: f"{P}-{n}" for n in ("sw", "client", "dir1", "dir2", "rs1", "rs2", "rs3")}
T0 = time.monotonic()


def say(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=60)


def nsx(host: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", NS[host], *cmd, check=check)


def plug(host: str, bridge: str, ifname: str, address: str) -> None:
    port = f"{P}{host[-4:]}{bridge[0]}"
    sh("ip", "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", NS[host])
    sh("ip", "link", "set", port, "netns", NS["sw"])
    nsx("sw", "ip", "link", "set", port, "master", bridge, "up")
    nsx(host, "ip", "addr", "add", address, "dev", ifname)
    nsx(host, "ip", "link", "set", ifname, "up")


def build(tmp: str) -> None:
    for ns in NS.values():
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    for br in ("wan", "lan"):
        nsx("sw", "ip", "link", "add", br, "type", "bridge")
        nsx("sw", "ip", "link", "set", br, "up")
    plug("client", "wan", "eth0", "10.30.0.9/24")
    for i in (1, 2):
        plug(f"dir{i}", "lan", "eth0", f"192.168.3.10{i}/24")
        plug(f"dir{i}", "wan", "eth1", f"10.30.0.{i}/24")
        nsx(f"dir{i}", "sysctl", "-qw", "net.ipv4.ip_forward=1")
    for i in (1, 2, 3):
        host = f"rs{i}"
        plug(host, "lan", "eth0", f"192.168.3.{i}/24")
        nsx(host, "ip", "route", "add", "default", "via", "192.168.3.253")
        d = os.path.join(tmp, host)
        os.makedirs(d)
        with open(f"{d}/nginx.conf", "w") as f:
            f.write(f"""worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d};
  fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};
  server {{ listen 80; location / {{ return 200 "server{i}\\n"; }} }} }}
""")
        nsx(host, "nginx", "-c", f"{d}/nginx.conf", "-p", d)


def start_director(host: str, conf: str, tmp: str) -> subprocess.Popen[bytes]:
    log = open(os.path.join(tmp, f"{host}.log"), "wb")
    run = os.path.join(tmp, host)
    os.makedirs(run, exist_ok=True)
    return subprocess.Popen(
        ["ip", "netns", "exec", NS[host], DIRECTOR, "-n", "-l", "-f", conf,
         "-p", f"{run}/k.pid", "-r", f"{run}/v.pid", "-c", f"{run}/c.pid",
         "--runtime-dir", run], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def holds(host: str, address: str) -> bool:
    return f"inet {address}/" in nsx(host, "ip", "-o", "addr", "show", check=False).stdout


def dests(host: str) -> int:
    out = nsx(host, "ipvsadm", "-Ln", check=False).stdout
    return sum(1 for line in out.splitlines() if line.strip().startswith("->")
               and "Masq" in line)


def wait(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise SystemExit(f"demo: timed out waiting for {what}")
        time.sleep(0.2)


CLIENT = r"""
import sys, time, urllib.request
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    t = time.time()
    try:
        body = urllib.request.urlopen("http://10.30.0.100/", timeout=1).read().decode().strip()
    except Exception as e:
        body = "FAILED " + type(e).__name__
    print(f"{t:.3f} {body}", flush=True)
    time.sleep(0.2)
"""


def main() -> int:
    if os.geteuid() != 0:
        print("demo: needs root (network namespaces, IPVS)", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="director-demo-")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        say("building: client, two directors, three nginx real servers (namespaces)")
        build(tmp)
        examples = os.path.join(ROOT, "conf", "examples")
        d1 = start_director("dir1", f"{examples}/001-lvs-nat-master.conf", tmp)
        d2 = start_director("dir2", f"{examples}/001-lvs-nat-backup.conf", tmp)
        procs += [d1, d2]
        say("started director -f 001-lvs-nat-master.conf on dir1, "
            "-backup.conf on dir2; waiting for the election and the checkers")
        wait(lambda: holds("dir1", "10.30.0.100") and holds("dir1", "192.168.3.253"), 180,
             "dir1 to become master")
        say("dir1 is MASTER: VIPs 10.30.0.100 and 192.168.3.253 on dir1")
        wait(lambda: dests("dir1") == 3, 180, "three real servers in dir1's IPVS table")
        say("dir1's IPVS table:\n" + nsx("dir1", "ipvsadm", "-Ln").stdout.rstrip())
        code = "import urllib.request\nfor _ in range(6): print(urllib.request.urlopen(" \
               "'http://10.30.0.100/', timeout=3).read().decode().strip())"
        answers = nsx("client", sys.executable, "-c", code).stdout.split()
        say(f"client, 6 requests through the VIP: {' '.join(answers)}")
        client = subprocess.Popen(["ip", "netns", "exec", NS["client"], sys.executable, "-c",
                                   CLIENT, "30"], stdout=subprocess.PIPE, text=True)
        procs.append(client)  # type: ignore[arg-type]
        time.sleep(8)  # the client's interpreter starts slowly under emulation
        t_kill = time.time()
        os.killpg(d1.pid, signal.SIGKILL)
        for dev in ("eth0", "eth1"):
            nsx("dir1", "ip", "link", "set", dev, "down")
        say("killed dir1 (SIGKILL to director, links down): the master node is gone")
        wait(lambda: holds("dir2", "10.30.0.100") and holds("dir2", "192.168.3.253"), 30,
             "dir2 to take the VIPs")
        t_moved = time.time()
        say(f"dir2 holds both VIPs, {t_moved - t_kill:.2f} s after the kill")
        out = client.communicate(timeout=60)[0].splitlines()
        failed = [x for x in out if "FAILED" in x]
        after = [x.split()[1] for x in out if float(x.split()[0]) > t_moved + 1
                 and "FAILED" not in x]
        say(f"client: {len(out)} requests, {len(failed)} failed (1 s timeout each); "
            f"after the failover: {' '.join(after[:6])} ...")
        for line in out:
            t, body = line.split(" ", 1)
            if -2 < float(t) - t_kill < 6:
                print(f"    {float(t) - t_kill:+6.2f}s  {body}")
        ok = not failed or len(failed) <= 10
        say("demo done" if ok and after else "demo: the backup did not serve")
        return 0 if ok and after else 1
    finally:
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    p.terminate()
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
        for i in (1, 2, 3):
            d = os.path.join(tmp, f"rs{i}")
            nsx(f"rs{i}", "nginx", "-c", f"{d}/nginx.conf", "-p", d, "-s", "stop", check=False)
        for ns in NS.values():
            sh("ip", "netns", "del", ns, check=False)
        subprocess.run(["rm", "-rf", tmp], check=False)


if __name__ == "__main__":
    sys.exit(main())
