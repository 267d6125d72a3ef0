"""The IPVS start-up floor in phases (run in the VM: `tools/run-in-vm python
bench/start_phases.py`): keepalived -C and director -C (and other director commands given
with --director, e.g. another checkout's, for a before/after) interleaved on a 1 x 1
config (--size VSxRS for another), each start timed from exec to the checker child's
fork (the first entry in /proc/PID/task/PID/children) and from there to all its
destinations in /proc/net/ip_vs;
medians of --rounds. Polled every 5 ms: finer than the phases it reports, coarser than
a timestamp; a diagnosis of bench/ipvs_sync.py's floor row, not a row of its own.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DIRECTOR  # noqa: E402
from gen_config import generate  # noqa: E402


def dests() -> int:
    with open("/proc/net/ip_vs") as f:
        return sum(1 for line in f if line.startswith("  ->") and "Remote" not in line)


def children(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return f.read().strip()
    except OSError:
        return ""


def start(cmd: list[str], want: int = 1, timeout: float = 120) -> tuple[float, float]:
    """(exec -> fork, fork -> `want` destinations) of one start, in seconds."""
    subprocess.run(["ipvsadm", "-C"], check=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    forked = up = None
    while time.perf_counter() - t0 < timeout:
        now = time.perf_counter()
        if forked is None and children(proc.pid):
            forked = now
        if dests() >= want:
            up = now
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout)
    if up is None:
        return float("nan"), float("nan")
    forked = up if forked is None else forked
    return forked - t0, up - forked


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--size", default="1x1", help="VSxRS (default 1x1: the floor)")
    p.add_argument("--director", action="append", default=[],
                   help="a director command to compare (default: this checkout's)")
    a = p.parse_args()
    n_vs, n_rs = (int(n) for n in a.size.split("x"))
    if not os.path.exists("/proc/net/ip_vs"):
        subprocess.run(["modprobe", "ip_vs"], check=False)
    with tempfile.TemporaryDirectory() as tmp:
        conf = os.path.join(tmp, "keepalived.conf")
        with open(conf, "w") as f:
            f.write(generate(n_vs, n_rs, checks=False))
        cmds = {"keepalived": ["keepalived", "-C", "-n", "-f", conf, "-p", f"{tmp}/k.pid",
                               "-c", f"{tmp}/kc.pid"]}
        for i, d in enumerate(a.director or [DIRECTOR]):
            cmds[f"director{i}"] = [d, "-C", "-n", "-f", conf, "-p", f"{tmp}/d.pid",
                                    "-c", f"{tmp}/dc.pid", "--runtime-dir", f"{tmp}/run"]
        for cmd in cmds.values():  # warm-up: the first start pays the cold 9p reads
            start(cmd, n_vs * n_rs)
        got: dict[str, list[tuple[float, float]]] = {k: [] for k in cmds}
        for _ in range(a.rounds):
            for name, cmd in cmds.items():
                got[name].append(start(cmd, n_vs * n_rs))
                print(name, *(f"{x:.3f}" for x in got[name][-1]), file=sys.stderr,
                      flush=True)
    base = statistics.median(f + u for f, u in got["keepalived"])
    print(f"| {a.size}: process (median of {a.rounds}) | exec -> fork | fork -> destination "
          "| total | x keepalived |")
    print("|---|---|---|---|---|")
    for name, runs in got.items():
        fork = statistics.median(f for f, _ in runs)
        rest = statistics.median(u for _, u in runs)
        total = statistics.median(f + u for f, u in runs)
        label = name if name == "keepalived" else cmds[name][0]
        print(f"| {label} | {fork:.2f} s | {rest:.2f} s | {total:.2f} s | {total / base:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
