"""Shared by the benchmarks: timing whole processes and printing result rows."""

from __future__ import annotations

import os
import statistics
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIRECTOR = os.path.join(ROOT, ".venv", "bin", "director")


PACKAGES = ("conf", "daemonlib", "vrrp", "checkers", "director")


def precompile() -> None:
    """Byte-compile the project as an install does: with PYTHONDONTWRITEBYTECODE set (as
    in some shells and CI) every run would otherwise compile the sources again, a
    start-up cost no installed director pays."""
    python = os.path.join(ROOT, ".venv", "bin", "python")
    subprocess.run([python, "-m", "compileall", "-q", *(os.path.join(ROOT, d) for d in PACKAGES)],
                   check=True, stdout=subprocess.DEVNULL)


def run_timed(cmd: list[str]) -> tuple[float, int, int]:
    """Wall seconds, peak RSS (KiB) and exit code of one run of `cmd`."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss, proc.returncode


def compare(cmds: dict[str, list[str]], runs: int) -> dict[str, dict[str, float]]:
    """Run each command `runs` times, interleaved so that machine noise hits both alike."""
    walls: dict[str, list[float]] = {k: [] for k in cmds}
    rss: dict[str, int] = {k: 0 for k in cmds}
    for _ in range(runs):
        for name, cmd in cmds.items():
            wall, peak, _ = run_timed(cmd)
            walls[name].append(wall)
            rss[name] = max(rss[name], peak)
    return {k: {"median": statistics.median(v), "min": min(v), "rss_kib": rss[k]}
            for k, v in walls.items()}


def row(name: str, ours: float, theirs: float, unit: str, target: float | None) -> str:
    """A markdown row; target None means the figure is reported, not judged."""
    ratio = ours / theirs if theirs else float("inf")
    if target is None:
        goal, verdict = "-", "report"
    else:
        goal, verdict = f"<= {target:g}x", "pass" if ratio <= target else "FAIL"
    return (f"| {name} | {ours:.3f} {unit} | {theirs:.3f} {unit} | {ratio:.2f}x | "
            f"{goal} | {verdict} |")


HEADER = ("| benchmark | director | keepalived | ratio | target | result |\n"
          "|---|---|---|---|---|---|")
