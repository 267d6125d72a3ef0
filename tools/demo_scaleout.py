"""`make demo-scaleout`: three active directors behind a BGP/ECMP router (issue 14),
built in network namespaces (tools/scaleout.py), with a printed timeline:

1. all three announce the VIP; the router's route has 3 next hops; requests from many
   source ports spread over the directors and reach the real servers by mh;
2. one director loses its real servers (an nft drop in its namespace): it withdraws,
   the same source ports still reach the same real servers; restored: it announces;
3. a director node dies (links down, SIGKILL) under 300 slow downloads;
4. a director is stopped (SIGTERM) under 300 slow downloads: it withdraws first.

Needs root and IPVS (`make demo-scaleout` runs it in the VM when the host kernel has
none). Everything made here is removed at the end, also on failure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scaleout as so  # noqa: E402


def say(msg: str) -> None:
    print(f"{so.stamp(time.time())} {msg}", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sloppy-tcp", type=int, choices=(0, 1), default=1,
                   help="net.ipv4.vs.sloppy_tcp on the directors (0: see what it is for)")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("demo-scaleout: needs root (network namespaces, IPVS)", file=sys.stderr)
        return 2
    net = so.ScaleOut("sod", say=say, sloppy_tcp=bool(args.sloppy_tcp))
    if not net.ipvs:
        net.close()
        print("demo-scaleout: this kernel has no IPVS (make demo-scaleout runs it in the VM)",
              file=sys.stderr)
        return 2
    try:
        say("building: client -- router (BIRD2, ECMP) -- dir1-3 (director -f, bgp_speaker, "
            "DR, mh) + nginx rs1-3, in namespaces")
        net.build()
        r = so.run_all(net, list(range(40000, 40090)))
    except so.WaitTimeout as e:
        say(f"demo-scaleout: {e}")
        for name in ("bird", *so.DIRS):
            print(f"==== {name}\n{net.log_tail(name)}")
        return 1
    finally:
        net.close()
    print(f"""
summary (BGP hold time {so.HOLD} s, sloppy_tcp {args.sloppy_tcp}):
  pool lost -> withdrawn       {r.pool.withdrawn:5.2f} s   (checks {r.pool.detected:.2f} s, \
BGP {r.pool.after_quorum:.2f} s; back: announced {r.pool.back:.2f} s)
  same real server, 1 out      {r.same_server} of 90 source ports
  SIGKILL: downloads kept      {r.kill.downloads.complete}/{r.kill.downloads.started}, \
new connections failed for {r.kill.gap:.2f} s
  SIGTERM: downloads kept      {r.stop.downloads.complete}/{r.stop.downloads.started}, \
new connections failed or lost a SYN: {len(r.stop.failures)}""")
    ok = (r.kill.downloads.kept >= 0.99 and not r.stop.downloads.failed
          and r.same_server == 90)
    say("demo done" if ok else "demo-scaleout: a figure missed its target")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
