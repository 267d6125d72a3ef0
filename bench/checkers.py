"""Health-checker load: N real servers (loopback addresses 127.1.x.y, one nginx answering
on all of them), delay_loop 1 s, TCP_CHECK, HTTP_GET or SSL_GET.

Host part (director alone: keepalived's checker exits here, the host kernel has no IPVS):
the engine in this process for --seconds; checks/s sustained, the checker's CPU as a
percentage of one core (this process: it runs nothing but the engine), CPU per check,
p99 lateness (actual minus scheduled start of each check). Targets (issue 13): TCP_CHECK
at N = 5000 and HTTP_GET at N = 2000 keep p99 lateness < 100 ms under 30 % of one core.
--profile KIND:N prints a cProfile summary of that one run instead.

--compare (inside the VM, where keepalived's checker runs): `director -C` and
`keepalived -C` on the same generated config, one after the other; CPU per 1000 checks
of each process from /proc (every server is up, so checks = N x seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# ROOT first: this file is named like the package; tests/ for the shared nginx config
sys.path[:0] = [ROOT, HERE, os.path.join(ROOT, "tests")]
from common import DIRECTOR, HEADER, row  # noqa: E402
from testlib import nginx_conf, wait_for, wait_until  # noqa: E402

PORT = 18080
TLS_PORT = 18443
TARGETS = {"TCP_CHECK": 5000, "HTTP_GET": 2000}  # N judged: p99 < 100 ms, CPU < 30 %


def server(d: str) -> str:
    return (f"    server {{ listen {PORT} reuseport backlog=8192;\n"
            f"        listen {TLS_PORT} ssl reuseport backlog=8192;\n"
            f"        ssl_certificate {d}/srv.pem; ssl_certificate_key {d}/srv.key;\n"
            '        location / { return 200 "ok\\n"; } }')


def address(i: int) -> str:
    return f"127.1.{i // 250}.{i % 250 + 1}"


def start_nginx(d: str) -> subprocess.Popen[bytes]:
    # an ECDSA key: with RSA-2048, nginx's signatures (~1 ms each) capped SSL_GET here
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f"{d}/srv.key",
                    "-out", f"{d}/srv.pem", "-days", "2", "-subj", "/CN=bench"],
                   check=True, capture_output=True)
    conf = nginx_conf(d, server(d), connections=16384).replace(
        "worker_processes 1;", "worker_processes 2;")  # accepting must keep up: 2 CPUs
    with open(f"{d}/nginx.conf", "w") as f:
        f.write(conf)
    proc = subprocess.Popen(["nginx", "-c", f"{d}/nginx.conf", "-p", d, "-g", "daemon off;"],
                            stderr=subprocess.DEVNULL)
    wait_for(lambda: all(accepts(port) for port in (PORT, TLS_PORT)), 30,
             what=f"nginx to accept on ports {PORT} and {TLS_PORT}")
    return proc


def accepts(port: int) -> bool:
    """A TCP connection to the first server address on `port` is accepted."""
    import socket

    try:
        socket.create_connection((address(0), port), timeout=1).close()
    except OSError:
        return False
    return True


def config(n: int, kind: str) -> str:
    check = ("TCP_CHECK {\n            connect_timeout 3\n        }" if kind == "TCP_CHECK" else
             "HTTP_GET {\n            url {\n              path /\n            }\n"
             "            connect_timeout 3\n        }")
    servers = "".join(f"    real_server {address(i)} {PORT} {{\n        {check}\n    }}\n"
                      for i in range(n))
    return ("virtual_server 10.99.0.1 80 {\n    delay_loop 1\n    lb_algo rr\n"
            f"    lb_kind NAT\n    protocol TCP\n{servers}}}\n")


def listen_drops() -> int:
    """The host's count of connection requests dropped by a full listen queue: each one
    costs a client a 1 s SYN retransmit, seen here as lateness the checker did not cause."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=True):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split(), values.split(), strict=True))["ListenDrops"])
    return 0


@dataclasses.dataclass
class Run:
    rate: float  # checks/s
    cpu: float  # CPU seconds per wall second (1.0 = one core)
    per_check: float  # CPU seconds per check
    user: float  # ... of which in user space (the interpreter; the rest is the kernel's)
    p99: float  # lateness, seconds
    failures: int
    drops: int  # listen queue drops at the server during the run


async def engine_run(n: int, kind: str, seconds: float) -> Run:
    """The engine in this process with n checkers of `kind`, measured for `seconds`."""
    from checkers.engine import Engine, Job
    from checkers.state import RetryState
    from conf.model import Checker, Url

    failures = 0

    def changed(key, up):  # type: ignore[no-untyped-def]
        nonlocal failures
        failures += not up

    port = TLS_PORT if kind == "SSL_GET" else PORT
    eng = Engine(changed, lambda k, w: None, lateness=200_000)
    for i in range(n):
        ck = Checker(type=kind, connect_ip=address(i), connect_port=port, urls=(Url(),))
        eng.add(Job((0, i, 0), ck, address(i), RetryState(retry=1, delay_loop=1.0,
                                                          delay_before_retry=1.0), timeout=3))
    eng.start()
    # measured from the end of the spread-out first round: every checker has checked once
    await wait_until(lambda: all(j.checks for j in eng.jobs), 60,
                     what=f"the first round of {n} {kind}")
    assert eng.lateness is not None
    eng.lateness.clear()
    checks0 = sum(j.checks for j in eng.jobs)
    drops0 = listen_drops()
    t0, times0 = time.monotonic(), os.times()
    await asyncio.sleep(seconds)
    wall, times = time.monotonic() - t0, os.times()
    user = times.user - times0.user
    cpu = user + times.system - times0.system
    checks = sum(j.checks for j in eng.jobs) - checks0
    late = sorted(eng.lateness)
    eng.stop()
    p99 = late[int(len(late) * 0.99)] if late else float("nan")
    return Run(checks / wall, cpu / wall, cpu / max(checks, 1), user / max(checks, 1), p99,
               failures, listen_drops() - drops0)


def measure(n: int, kind: str, seconds: float) -> Run:
    return asyncio.run(engine_run(n, kind, seconds))


def profile(spec: str, seconds: float) -> None:
    import cProfile
    import pstats

    kind, n = spec.split(":")
    prof = cProfile.Profile()
    prof.enable()
    r = measure(int(n), kind, seconds)
    prof.disable()
    print(f"{kind} N={n}: {r.rate:.0f} checks/s, CPU {r.cpu * 100:.1f} % (under the "
          f"profiler), p99 {r.p99 * 1000:.1f} ms")
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def proc_cpu(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def ipvs_dests() -> int:
    with open("/proc/net/ip_vs") as f:
        return sum(1 for line in f if line.startswith("  ->") and "Remote" not in line)


def process_cpu_per_1000(cmd: list[str], n: int, seconds: float, startup: float) -> float:
    """CPU per 1000 checks of `cmd`'s processes, measured from the moment its checker
    has programmed all n real servers: the start-up (imports, parse) is left out by the
    event, not by a guessed settling time."""
    subprocess.run(["ipvsadm", "-C"], check=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_for(lambda: proc.poll() is not None or ipvs_dests() == n, startup, step=0.2,
                 what=f"{cmd[0]} to program its {n} real servers")
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}")
        pids = [proc.pid, *children(proc.pid)]
        c0 = proc_cpu(pids)
        time.sleep(seconds)
        return (proc_cpu(pids) - c0) / (n * seconds) * 1000
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--tcp", default="1000,5000")
    p.add_argument("--http", default="1000,2000")
    p.add_argument("--ssl", default="200,500")
    p.add_argument("--profile", metavar="KIND:N", help="cProfile one run, e.g. HTTP_GET:2000")
    p.add_argument("--compare", type=int, default=0, metavar="N",
                   help="in the VM: director -C vs keepalived -C CPU with N servers")
    args = p.parse_args()
    d = tempfile.mkdtemp(prefix="bench-chk-")
    nginx = start_nginx(d)
    try:
        if args.compare:
            return compare(d, args.compare, args.seconds)
        if args.profile:
            profile(args.profile, args.seconds)
            return 0
        load = os.getloadavg()[0]
        print("## Health checkers: one engine, delay_loop 1 s, one nginx on N loopback "
              f"addresses (load average {load:.1f} at the start)\n")
        print("| checker | N | checks/s | CPU % of one core | CPU us / check (user) | "
              "p99 lateness | server SYN drops | target | result |\n"
              "|---|---|---|---|---|---|---|---|---|")
        for kind, ns in (("TCP_CHECK", args.tcp), ("HTTP_GET", args.http),
                         ("SSL_GET", args.ssl)):
            for n in (int(x) for x in ns.split(",") if x):
                r = measure(n, kind, args.seconds)
                judged = TARGETS.get(kind) == n
                ok = r.p99 < 0.1 and r.cpu < 0.3
                verdict = ("pass" if ok else "FAIL") if judged else "report"
                note = f" ({r.failures} down)" if r.failures else ""
                print(f"| {kind} | {n} | {r.rate:.0f}{note} | {r.cpu * 100:.1f} % | "
                      f"{r.per_check * 1e6:.0f} ({r.user * 1e6:.0f}) | "
                      f"{r.p99 * 1000:.1f} ms | {r.drops} | "
                      f"{'p99 < 100 ms, CPU < 30 %' if judged else '-'} | {verdict} |",
                      flush=True)
    finally:
        nginx.terminate()
        nginx.wait(10)
        shutil.rmtree(d, ignore_errors=True)
    return 0


def compare(d: str, n: int, seconds: float) -> int:
    print(f"## Health checkers in the VM: CPU per 1000 checks, N = {n}, delay_loop 1 s\n")
    print(HEADER)
    for kind in ("TCP_CHECK", "HTTP_GET"):
        conf = f"{d}/{kind}.conf"
        with open(conf, "w") as f:
            f.write(config(n, kind))
        ours = process_cpu_per_1000([DIRECTOR, "-C", "-n", "-f", conf], n, seconds, 300)
        theirs = process_cpu_per_1000(["keepalived", "-C", "-n", "-f", conf, "-p",
                                       f"{d}/k.pid", "-c", f"{d}/c.pid"], n, seconds, 300)
        print(row(f"{kind} CPU s per 1000 checks", ours, theirs, "s", 3.0), flush=True)
        # n checks a second: CPU s per 1000 checks x n / 10 = % of one core
        print(row(f"{kind} checker CPU, % of one core", ours * n / 10, theirs * n / 10, "%",
                  None), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
