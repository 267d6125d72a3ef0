"""Scale-out behind ECMP (issue 14): three `director -f` announcing the VIP with BGP to a
BIRD2 router, DR + mh + sloppy_tcp (tools/scaleout.py, as `make demo-scaleout`). The
figures: downloads kept when a director dies (SIGKILL, links down) or is stopped
(SIGTERM) under 300 slow downloads, how long new connections fail, how fast a director
that loses its pool withdraws. keepalived has no BGP speaker (its users script ExaBGP
or BIRD beside it), so its column says so instead of a figure.

Needs root and IPVS: `make bench` runs it in the VM (tools/run-in-vm).
"""

from __future__ import annotations

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# tools/ first: this file's own name is scaleout too
sys.path[:0] = [os.path.join(os.path.dirname(HERE), "tools"), HERE]
import scaleout as so  # noqa: E402
from common import HEADER  # noqa: E402

NONE = "n/a: no BGP in keepalived"
GAP_TARGET = so.HOLD + 1.0  # the hold time, and a second for BIRD and the kernel route


def line(name: str, ours: str, target: str, ok: bool) -> str:
    return f"| {name} | {ours} | {NONE} | - | {target} | {'pass' if ok else 'FAIL'} |"


def main() -> int:
    log: list[str] = []
    net = so.ScaleOut("sob", say=lambda m: log.append(f"{so.stamp(time.time())} {m}"))
    if not net.ipvs:
        net.close()
        print("bench/scaleout.py: this kernel has no IPVS (run it with tools/run-in-vm)",
              file=sys.stderr)
        return 2
    print(f"## Scale-out: 3 directors behind a BGP/ECMP router (BIRD2, hold time {so.HOLD} s"
          f"), DR + mh + sloppy_tcp, 300 slow downloads\n")
    try:
        net.build()
        r = so.run_all(net, list(range(40000, 40090)))
    except (so.WaitTimeout, AssertionError) as e:
        print(f"scale-out run failed: {e}\n" + "\n".join(log[-20:]), file=sys.stderr)
        for name in ("bird", *so.DIRS):
            print(f"==== {name}\n{net.log_tail(name)}", file=sys.stderr)
        return 1
    finally:
        net.close()
    print(HEADER)
    k, s = r.kill, r.stop
    print(line("downloads kept, 1 of 3 directors killed (links down, SIGKILL)",
               f"{k.downloads.complete}/{k.downloads.started} "
               f"({100 * k.downloads.kept:.1f}%)", ">= 99%", k.downloads.kept >= 0.99))
    print(line("new connections failing (or SYN lost) after the kill", f"{k.gap:.2f} s",
               f"<= {GAP_TARGET:g} s", k.gap <= GAP_TARGET))
    print(line("downloads kept, 1 of 2 directors stopped (SIGTERM)",
               f"{s.downloads.complete}/{s.downloads.started} "
               f"({100 * s.downloads.kept:.1f}%)", "100%", not s.downloads.failed))
    print(line("new connections failed or SYN lost after the stop",
               f"{len(s.failures)} of {s.probes}", "0", not s.failures))
    print(line("quorum lost to route withdrawn (the BGP part of a lost pool)",
               f"{r.pool.after_quorum:.2f} s", f"<= {so.HOLD} s",
               r.pool.after_quorum <= so.HOLD))
    print(line("pool unreachable to route withdrawn (checks: delay_loop 1, connect_timeout 1)",
               f"{r.pool.withdrawn:.2f} s", "-", True).replace("| pass |", "| report |"))
    print(line("same real server with one director out (mh)", f"{r.same_server}/90",
               "90/90", r.same_server == 90))
    return 0


if __name__ == "__main__":
    sys.exit(main())
