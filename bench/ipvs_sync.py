"""Programming IPVS from a config, director -C against keepalived -C, in the same VM
(run by `make bench` through tools/run-in-vm; IPVS needs the Debian kernel).

- the start-up floor: a 1 x 1 config, process start to its one destination in the
  kernel (target <= 3x keepalived's);
- programming beyond start-up: for each --sizes VSxRS config, the time to all its
  destinations (polled in /proc/net/ip_vs) minus that floor (target <= 2x keepalived's);
  and the time to an empty table after SIGTERM (reported);
- each figure is the median of --repeat rounds per size (a round: the floor, then the
  size, director and keepalived interleaved, which one first swapped each round; the
  sizes in blocks of their own, see main; "beyond the floor" is the median of the
  rounds' differences), after one untimed warm-up start of each (the VM reads files through
  uncached 9p: the first start of either daemon pays for the cold reads alone, and
  single samples of the floor vary more than the effect measured);
- reload: in the largest config, one real server's weight changed, SIGHUP: the netlink
  operations director reports sending (target 1).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DIRECTOR, HEADER, row  # noqa: E402
from gen_config import generate  # noqa: E402


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


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def reload_ops(conf: str, changed: str, tmp: str, views: dict[str, float]) -> int | None:
    """The ops of a one-weight reload; `views` gets the time of `director ipvs` and of
    `ipvsadm -Ln` on the full table meanwhile."""
    log = os.path.join(tmp, "director.log")
    subprocess.run(["ipvsadm", "-C"], check=True)
    with open(log, "w") as out:
        proc = subprocess.Popen([DIRECTOR, "-C", "-n", "-D", "-f", conf], stderr=out)
    try:
        if wait_for(lambda: "Startup complete" in open(log).read(), 600) is None:
            return None
        views["director"] = timed([DIRECTOR, "ipvs"])
        views["ipvsadm"] = timed(["ipvsadm", "-Ln"])
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
    p.add_argument("--sizes", default="200x10,1000x10",
                   help="comma-separated VSxRS configs measured beyond the 1x1 floor")
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--repeat", type=int, default=5,
                   help="runs per figure (median): a single start in the emulated VM varies by "
                   "up to 3x, more than the differences measured")
    a = p.parse_args()
    sizes = [tuple(int(x) for x in s.split("x")) for s in a.sizes.split(",") if s]
    if not os.path.exists("/proc/net/ip_vs"):
        subprocess.run(["modprobe", "ip_vs"], check=False)
    if not os.path.exists("/proc/net/ip_vs"):
        print("bench/ipvs_sync.py: no IPVS in this kernel (run it through tools/run-in-vm)",
              file=sys.stderr)
        return 1
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        conf = os.path.join(tmp, "keepalived.conf")

        def cmds() -> tuple[list[str], list[str]]:
            return ([DIRECTOR, "-C", "-n", "-f", conf],
                    ["keepalived", "-C", "-n", "-f", conf, "-p", f"{tmp}/k.pid",
                     "-c", f"{tmp}/kc.pid"])

        def write(vs: int, rs: int) -> str:
            text = generate(vs, rs, checks=False)
            with open(conf, "w") as f:
                f.write(text)
            return text

        write(1, 1)
        for cmd in cmds():  # warm-up, untimed
            measure(cmd, 1, a.timeout)
        # One block of rounds per size, each round the floor then the size, the daemons'
        # order swapped from round to round: a big table's teardown leaves the kernel
        # work for a while after the table reads empty (started right after 10,000
        # destinations were removed, a 2000-destination start took 0.8-1.0 s longer, for
        # either daemon), and with the sizes interleaved in one round that work landed on
        # the same starts every round (the 2000 row read 1.03 s against 0.40 s without
        # the 10,000 size in the rounds).
        runs: dict[tuple[int, int], tuple[list, list]] = {}
        beyond: dict[tuple[int, int], tuple[float, float]] = {}
        for vs, rs in sizes:
            for n in range(a.repeat):
                for size in [(1, 1), (vs, rs)]:
                    text = write(*size)
                    for i in ((0, 1) if n % 2 == 0 else (1, 0)):
                        runs.setdefault(size, ([], []))[i].append(
                            measure(cmds()[i], size[0] * size[1], a.timeout))
            # against the floors of this block: the last --repeat of each daemon's
            beyond[(vs, rs)] = tuple(
                statistics.median(u - f for (u, _), (f, _) in
                                  zip(r, fl[-a.repeat:], strict=True))
                for r, fl in zip(runs[(vs, rs)], runs[(1, 1)], strict=True))
        for key, pair in runs.items():
            results[key] = tuple(
                (statistics.median(u for u, _ in r), statistics.median(d for _, d in r))
                for r in pair)
        changed = os.path.join(tmp, "changed.conf")
        with open(changed, "w") as f:
            f.write(text.replace("        weight 1\n", "        weight 9\n", 1))
        views: dict[str, float] = {}
        ops = reload_ops(conf, changed, tmp, views)
    print(f"## IPVS programming in a VM (Debian kernel, software emulation; median of "
          f"{a.repeat} rounds per size after a warm-up, each size in a block of its own, "
          f"the daemons' order swapped each round)\n")
    print(HEADER)
    (d_floor, _), (k_floor, _) = results[(1, 1)]
    print(row("ipvs: start-up floor, 1 x 1 config to its destination", d_floor, k_floor, "s",
              3.0))
    for vs, rs in sizes:
        (_, d_down), (_, k_down) = results[(vs, rs)]
        d_beyond, k_beyond = beyond[(vs, rs)]
        print(row(f"ipvs: {vs * rs} destinations ({vs} x {rs}), start beyond the floor",
                  d_beyond, k_beyond, "s", 2.0))
        print(row(f"ipvs: {vs * rs} destinations, SIGTERM to table empty", d_down, k_down,
                  "s", None))
    vs, rs = sizes[-1]
    if views:
        print(row(f"ipvs: `director ipvs` vs `ipvsadm -Ln`, {vs * rs} destinations",
                  views["director"], views["ipvsadm"], "s", None))
    print(f"| ipvs: netlink ops for a one-weight reload ({vs * rs} destinations) | {ops} | - "
          f"| - | 1 | {'pass' if ops == 1 else 'FAIL'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
