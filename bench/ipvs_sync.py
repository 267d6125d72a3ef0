"""Programming IPVS from a config, director -C against keepalived -C, in the same VM
(run by `make bench` through tools/run-in-vm; IPVS needs the Debian kernel).

- start: time from process start to all N x M destinations in the kernel
  (polled in /proc/net/ip_vs), and to all removed after SIGTERM;
- reload: one real server's weight changed, SIGHUP: the netlink operations
  director reports sending (target 1).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DIRECTOR, HEADER, row  # noqa: E402
from gen_config import generate, size_args  # noqa: E402


def dest_count() -> int:
    with open("/proc/net/ip_vs") as f:
        return sum(1 for line in f if line.startswith("  ->") and "Remote" not in line)


def wait_for(pred, timeout: float) -> float | None:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if pred():
            return time.perf_counter() - start
        time.sleep(0.01)
    return None


def say(*a: object) -> None:
    print(*a, file=sys.stderr, flush=True)


def measure(cmd: list[str], want: int, timeout: float) -> tuple[float, float]:
    say("measuring", cmd[0])
    subprocess.run(["ipvsadm", "-C"], check=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    took = wait_for(lambda: dest_count() >= want, timeout)
    up = (time.perf_counter() - start) if took is not None else float("nan")
    say(f"  {dest_count()} destinations after {up:.2f}s")
    start = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=timeout)
    gone = wait_for(lambda: dest_count() == 0, timeout)
    down = (time.perf_counter() - start) if gone is not None else float("nan")
    return up, down


def reload_ops(conf: str, changed: str, tmp: str) -> int | None:
    log = os.path.join(tmp, "director.log")
    subprocess.run(["ipvsadm", "-C"], check=True)
    with open(log, "w") as out:
        proc = subprocess.Popen([DIRECTOR, "-C", "-n", "-D", "-f", conf], stderr=out)
    try:
        if wait_for(lambda: "Startup complete" in open(log).read(), 600) is None:
            return None
        with open(changed) as src, open(conf, "w") as dst:
            dst.write(src.read())
        proc.send_signal(signal.SIGHUP)
        pat = re.compile(r"IPVS: \d+ virtual services, (\d+) operations applied")
        if wait_for(lambda: len(pat.findall(open(log).read())) >= 2, 600) is None:
            return None
        return int(pat.findall(open(log).read())[-1])
    finally:
        proc.terminate()
        proc.wait(timeout=600)


def main() -> int:
    p = argparse.ArgumentParser()
    size_args(p)
    p.add_argument("--timeout", type=float, default=900)
    a = p.parse_args()
    if not os.path.exists("/proc/net/ip_vs"):
        subprocess.run(["modprobe", "ip_vs"], check=False)
    if not os.path.exists("/proc/net/ip_vs"):
        print("bench/ipvs_sync.py: no IPVS in this kernel (run it through tools/run-in-vm)",
              file=sys.stderr)
        return 1
    text = generate(a.vs, a.rs, checks=False)
    want = a.vs * a.rs
    with tempfile.TemporaryDirectory() as tmp:
        conf = os.path.join(tmp, "keepalived.conf")
        with open(conf, "w") as f:
            f.write(text)
        ours = measure([DIRECTOR, "-C", "-n", "-f", conf], want, a.timeout)
        theirs = measure(["keepalived", "-C", "-n", "-f", conf, "-p", f"{tmp}/k.pid",
                          "-c", f"{tmp}/kc.pid"], want, a.timeout)
        changed = os.path.join(tmp, "changed.conf")
        with open(changed, "w") as f:
            f.write(text.replace("        weight 1\n", "        weight 9\n", 1))
        ops = reload_ops(conf, changed, tmp)
    print(f"IPVS programming in a VM (Debian kernel, software emulation): {a.vs} virtual "
          f"servers x {a.rs} real servers = {want} destinations")
    print(HEADER)
    print(row("ipvs: start to all destinations", ours[0], theirs[0], "s", 1.0))
    print(row("ipvs: SIGTERM to table empty", ours[1], theirs[1], "s", None))
    print(f"| ipvs: netlink ops for a one-weight reload | {ops} | - | - | 1 | "
          f"{'pass' if ops == 1 else 'FAIL'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
