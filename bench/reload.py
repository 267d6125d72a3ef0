"""A reload at 10,000 real servers, natively (IPVS dry run: the host kernel has none):
`director -C --dry-run` on a 1000 x 10 config, one real server's weight changed, SIGHUP;
the time from the signal to the one operation being applied (the dry-run plane's log
line, read as it is written), the CPU the checker child spent on it (steadier than wall
time on a shared machine), and the operations counted. keepalived cannot run its
checker without IPVS, so the row has no keepalived figure. Beside it: the first reload
after start-up (sent as soon as the daemon says it started), the CPU of reading the
file again as a reload does (conf/incremental.py: only the changed blocks), and of a
full parse for comparison.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]
from common import DIRECTOR  # noqa: E402
from gen_config import generate, size_args  # noqa: E402

APPLIED = re.compile(r"IPVS: \d+ virtual services, (\d+) operations applied")
LIMIT_MS = 100.0


def reader(stream, out: queue.Queue[tuple[float, str]]) -> None:  # type: ignore[no-untyped-def]
    for line in stream:
        out.put((time.monotonic(), line))


def wait_line(lines: queue.Queue[tuple[float, str]], pred, timeout: float,  # type: ignore[no-untyped-def]
              what: str) -> tuple[float, str]:
    end = time.monotonic() + timeout
    while True:
        try:
            t, line = lines.get(timeout=max(0.0, end - time.monotonic()))
        except queue.Empty:
            raise RuntimeError(f"bench/reload.py: no {what} within {timeout:g} s") from None
        if pred(line):
            return t, line


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parse_seconds(path: str, before: str) -> tuple[float, float]:
    """CPU time, in a fresh interpreter, of conf.load on the file (a full parse), and of
    the incremental re-read a reload does (conf/incremental.py) from the file as it was
    (`before`) to the file as it is."""
    code = ("import time,sys,shutil; from conf import load; from conf import incremental; "
            "t=time.process_time(); load(sys.argv[1]); full=time.process_time()-t; "
            "shutil.copy(sys.argv[1], sys.argv[1]+'.new'); shutil.copy(sys.argv[2], sys.argv[1]); "
            "incremental.load_incremental(sys.argv[1]); "
            "shutil.copy(sys.argv[1]+'.new', sys.argv[1]); "
            "t=time.process_time(); incremental.load_incremental(sys.argv[1]); "
            "print(full, time.process_time()-t)")
    out = subprocess.run([sys.executable, "-c", code, path, before], check=True, text=True,
                         capture_output=True, cwd=os.path.dirname(HERE)).stdout
    full, incremental = out.split()
    return float(full), float(incremental)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size_args(p)
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    text = generate(a.vs, a.rs, checks=False)
    times, ops, parses, rereads, cpus = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        conf = os.path.join(tmp, "keepalived.conf")
        with open(conf, "w") as f:
            f.write(text)
        cmd = [DIRECTOR, "-C", "-n", "--dry-run", "-f", conf, "--runtime-dir", f"{tmp}/run",
               "-p", f"{tmp}/p.pid", "-c", f"{tmp}/c.pid"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        lines: queue.Queue[tuple[float, str]] = queue.Queue()
        threading.Thread(target=reader, args=(proc.stderr, lines), daemon=True).start()
        try:
            wait_line(lines, lambda s: "Startup complete" in s, 300, "start-up")
            with open(f"{tmp}/c.pid") as f:
                child = int(f.read())
            before = os.path.join(tmp, "before.conf")
            for i in range(a.runs):
                weight = 9 if i % 2 == 0 else 1
                os.replace(conf, before)
                with open(conf, "w") as f:
                    f.write(text.replace("        weight 1\n", f"        weight {weight}\n", 1))
                c0 = cpu_seconds(child)
                t0 = time.monotonic()
                proc.send_signal(signal.SIGHUP)
                t1, _ = wait_line(lines, lambda s: "IPVS dry-run: edit real server" in s, 120,
                                  "applied weight")
                _, line = wait_line(lines, APPLIED.search, 120, "reload summary")
                times.append(t1 - t0)
                cpus.append(cpu_seconds(child) - c0)
                ops.append(int(APPLIED.search(line).group(1)))  # type: ignore[union-attr]
                full, reread = parse_seconds(conf, before)
                parses.append(full)
                rereads.append(reread)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    ms = statistics.median(times) * 1000
    print(f"## Reload at {a.vs * a.rs} real servers ({a.vs} x {a.rs}), one weight changed, "
          f"natively, IPVS dry run (median of {a.runs})\n")
    print("| benchmark | director | keepalived | ratio | target | result |\n"
          "|---|---|---|---|---|---|")
    print(f"| reload: SIGHUP to the weight applied | {ms:.0f} ms | - | - | <= {LIMIT_MS:g} ms | "
          f"{'pass' if ms <= LIMIT_MS else 'FAIL'} |")
    print(f"| reload: CPU the checker child spent on it | "
          f"{statistics.median(cpus) * 1000:.0f} ms | - | - | - | report |")
    print(f"| reload: the first after start-up (SIGHUP to applied) | {times[0] * 1000:.0f} ms "
          f"| - | - | - | report |")
    print(f"| reload: of which reading the config again (conf.incremental's CPU) | "
          f"{statistics.median(rereads) * 1000:.1f} ms | - | - | - | report |")
    print(f"| reload: a full parse of the config, for comparison (conf.load's CPU) | "
          f"{statistics.median(parses) * 1000:.0f} ms | - | - | - | report |")
    worst = max(ops)
    print(f"| reload: netlink ops for the one-weight reload | {worst} | - | - | 1 | "
          f"{'pass' if set(ops) == {1} else 'FAIL'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
