"""Peak memory of the running daemons with a big config: `director -f` against
`keepalived -f`, the same generated N x M config (TCP_CHECK / HTTP_GET on every real
server), each for the same time, one after the other.

Every process of the daemon (parent and children) is sampled from /proc twice a second;
reported: the peak of their summed proportional set size (PSS, /proc/PID/smaps_rollup: a
page shared by forked processes counts once in the sum, not once per process as RSS
would), judged against 64 MiB; the largest single process; the summed RSS for reference.
Each daemon runs in a network namespace of its own with only loopback, so its checkers
reach nothing (the generated real servers are unroutable there) and IPVS tables stay
separate. Needs root and IPVS (run in the VM by `make bench`).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DIRECTOR, HEADER, row  # noqa: E402
from gen_config import generate, size_args  # noqa: E402

LIMIT_MIB = 64  # issue 13: the 1000 x 10 config with its checkers running


def _kib(path: str, fields: tuple[str, ...]) -> dict[str, int]:
    out = dict.fromkeys(fields, 0)
    with open(path) as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in out:
                out[name] = int(rest.split()[0])
    return out


def session_memory(sid: int) -> tuple[int, int, int, int]:
    """(sum of PSS KiB, largest PSS KiB, sum of RSS KiB, process count) of session sid."""
    pss = largest = rss = count = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.getsid(int(pid)) != sid:
                continue
            m = _kib(f"/proc/{pid}/smaps_rollup", ("Pss", "Rss"))
        except (OSError, ProcessLookupError):
            continue
        pss, largest = pss + m["Pss"], max(largest, m["Pss"])
        rss, count = rss + m["Rss"], count + 1
    return pss, largest, rss, count


def _mapping_kind(name: str) -> str:
    """A mapping's line in the detail: its file's base name, or its kind."""
    if not name:
        return "[anon]"
    if name.startswith("["):
        return "[stack]" if name.startswith("[stack") else name
    return os.path.basename(name.split(" (deleted)")[0])


def smaps_detail(pid: int) -> dict[str, dict[str, int]]:
    """KiB per mapping kind of one process: Pss, Rss, Private_Dirty, Shared_Clean,
    Private_Clean, AnonHugePages, Swap (from /proc/PID/smaps)."""
    fields = ("Pss", "Rss", "Private_Dirty", "Private_Clean", "Shared_Clean",
              "Shared_Dirty", "AnonHugePages", "Swap")
    out: dict[str, dict[str, int]] = {}
    cur: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split(None, 5)
            if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                kind = _mapping_kind(head[5].strip() if len(head) > 5 else "")
                cur = out.setdefault(kind, dict.fromkeys(fields, 0))
            elif head[0][:-1] in fields:
                cur[head[0][:-1]] += int(head[1])
    return out


def print_detail(sid: int, top: int = 12) -> None:
    """Per process of session sid: its command line and the mappings that hold most PSS."""
    for pid in sorted(int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            if os.getsid(pid) != sid:
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")[:70]
            detail = smaps_detail(pid)
        except (OSError, ProcessLookupError):
            continue
        total = {k: sum(d[k] for d in detail.values()) for k in next(iter(detail.values()))}
        print(f"\n### pid {pid}: {cmd}\n")
        print("| mapping | Pss | Rss | Private_Dirty | Private_Clean | Shared_Clean | "
              "AnonHuge |\n|---|---|---|---|---|---|---|")
        rows = sorted(detail.items(), key=lambda kv: -kv[1]["Pss"])
        for kind, d in [("(total)", total), *rows[:top]]:
            print(f"| {kind} | {d['Pss']} | {d['Rss']} | {d['Private_Dirty']} | "
                  f"{d['Private_Clean']} | {d['Shared_Clean']} | {d['AnonHugePages']} |")


def measure(name: str, cmd: list[str], seconds: float, procs: int = 2,
            startup: float = 900.0, detail: bool = False) -> dict[str, int]:
    """Peak memory over `seconds` from the moment the daemon runs `procs` processes."""
    ns = f"bench-mem-{os.getpid()}-{name}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    run = tempfile.mkdtemp(prefix=f"mem-{name}-")
    pids = ["-p", f"{run}/k.pid", "-r", f"{run}/v.pid", "-c", f"{run}/c.pid"]
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *cmd, *pids],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        # sample once the daemon has forked its children: under emulation the parse of a
        # big config alone can outlast the sampling window
        ready = time.monotonic() + startup
        while session_memory(proc.pid)[3] < procs and proc.poll() is None:
            if time.monotonic() > ready:
                raise RuntimeError(f"{name}: fewer than {procs} processes after {startup:g} s")
            time.sleep(0.5)
        peak = {"sum": 0, "max": 0, "rss": 0, "procs": 0, "last": 0}
        end = time.monotonic() + seconds
        while time.monotonic() < end and proc.poll() is None:
            total, largest, rss, count = session_memory(proc.pid)
            peak = {"sum": max(peak["sum"], total), "max": max(peak["max"], largest),
                    "rss": max(peak["rss"], rss), "procs": max(peak["procs"], count),
                    "last": total}
            time.sleep(0.5)
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited early with {proc.returncode}")
        if detail:
            print(f"## {name}: KiB per mapping at the end of the window")
            print_detail(proc.pid)
            print()
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return peak
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
        subprocess.run(["rm", "-rf", run], check=False)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size_args(p)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--director-only", action="store_true",
                   help="skip keepalived (natively: its checker needs IPVS and exits)")
    p.add_argument("--detail", action="store_true",
                   help="print each process's biggest mappings (KiB, from smaps) at the end")
    a = p.parse_args()
    if os.geteuid() != 0:
        print("bench/memory.py: needs root (network namespaces)", file=sys.stderr)
        return 2
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write(generate(a.vs, a.rs))
    try:
        ours = measure("director", [DIRECTOR, "-n", "-f", f.name], a.seconds,
                       detail=a.detail)
        theirs = ({"sum": 0, "max": 0, "rss": 0, "procs": 0, "last": 0} if a.director_only
                  else measure("keepalived", ["keepalived", "-n", "-f", f.name], a.seconds,
                                 detail=a.detail))
    finally:
        os.unlink(f.name)
    print(f"## Memory: daemons running a {a.vs} x {a.rs} config for {a.seconds:g} s "
          f"(director: {ours['procs']} processes, keepalived: {theirs['procs']})\n")
    print(HEADER)
    ours_mib, theirs_mib = ours["sum"] / 1024, theirs["sum"] / 1024
    verdict = "pass" if ours_mib <= LIMIT_MIB else "FAIL"
    if a.director_only:
        print(f"| memory: peak PSS, all processes | {ours_mib:.1f} MiB | - | - | "
              f"<= {LIMIT_MIB} MiB | {verdict} |")
        for name, key in (("PSS, all processes, at the end of the window", "last"),
                          ("peak PSS, largest process", "max"),
                          ("peak RSS, all processes", "rss")):
            print(f"| memory: {name} | {ours[key] / 1024:.1f} MiB | - | - | - | report |")
        return 0
    print(f"| memory: peak PSS, all processes | {ours_mib:.1f} MiB | {theirs_mib:.1f} MiB | "
          f"{ours_mib / theirs_mib:.2f}x | <= {LIMIT_MIB} MiB | {verdict} |")
    print(row("memory: PSS, all processes, at the end of the window", ours["last"] / 1024,
              theirs["last"] / 1024, "MiB", None))
    print(row("memory: peak PSS, largest process", ours["max"] / 1024, theirs["max"] / 1024,
              "MiB", None))
    print(row("memory: peak RSS, all processes (pages shared by forks counted again)",
              ours["rss"] / 1024, theirs["rss"] / 1024, "MiB", None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
