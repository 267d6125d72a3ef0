"""`director ipvs`'s table read at 10,000 destinations, natively: the fast decoder
(director/ipvs_fast.py) against a stand-in kernel on a socketpair that answers the
service dump and each service's destination dump with messages laid out as the kernel's
(the host kernel has no IPVS; the VM's figure is in ipvs_sync.py's rows). Target: < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import struct
import sys
import time

sys.path[:0] = [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                os.path.dirname(os.path.abspath(__file__))]
from gen_config import size_args  # noqa: E402

from director.ipvs_fast import (  # noqa: E402
    CMD_ATTR_DEST,
    CMD_ATTR_SERVICE,
    CMD_GET_SERVICE,
    NLMSG_DONE,
    Encoder,
    FastIpvs,
    attrs,
)
from director.ipvs_table import DestKey, DestSpec, SvcKey, SvcSpec  # noqa: E402

FAMILY = 0x20
COUNTERS = b"".join(struct.pack("=HHQ", 12, i, i) for i in range(1, 11))
STATS64 = struct.pack("=HH", 4 + len(COUNTERS), 12 | 0x8000) + COUNTERS


def nested(kind: int, body: bytes) -> bytes:
    return struct.pack("=HH", 4 + len(body), kind) + body


class StandIn:
    """Answers dumps for `vs` services of `rs` destinations each, 32 messages a datagram."""

    def __init__(self, vs: int, rs: int) -> None:
        enc = Encoder(FAMILY)
        self.ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        for s in (self.ours, self.theirs):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.ours.setblocking(False)
        self.services = []
        self.dests: dict[bytes, list[bytes]] = {}
        for v in range(vs):
            key = SvcKey(4, "TCP", f"10.{v // 250}.{v % 250}.1", 80)
            svc = enc.svc_key(key)
            self.services.append(nested(CMD_ATTR_SERVICE, svc + enc.svc_spec(
                key, SvcSpec("wrr", 1, 50, "255.255.255.255")) + STATS64))
            self.dests[svc] = [nested(CMD_ATTR_DEST, enc.dest(
                DestKey(f"172.16.{v % 250}.{r + 1}", 80), DestSpec("NAT", r + 1)) + STATS64
                + struct.pack("=HHIHHI", 8, 7, 0, 8, 8, 0)) for r in range(rs)]

    def serve(self) -> None:
        data = self.theirs.recv(65536)
        _len, _kind, _flags, seq = struct.unpack_from("=IHHI", data, 0)
        cmd = data[16]
        if cmd == CMD_GET_SERVICE:
            bodies = self.services
        else:
            a = attrs(data, 20, len(data))
            bodies = self.dests[bytes(a[CMD_ATTR_SERVICE])]
        for i in range(0, len(bodies), 32):
            self.theirs.send(b"".join(
                struct.pack("=IHHIIBBH", 20 + len(b), FAMILY, 2, seq, 0, cmd, 1, 0) + b
                for b in bodies[i:i + 32]))
        self.theirs.send(struct.pack("=IHHIIi", 20, NLMSG_DONE, 2, seq, 0, 0))


async def read_once(vs: int, rs: int) -> tuple[float, float, int]:
    kern = StandIn(vs, rs)
    fast = FastIpvs(FAMILY, kern.ours)
    loop = asyncio.get_running_loop()
    loop.add_reader(kern.theirs.fileno(), kern.serve)
    try:
        start, cpu = time.perf_counter(), time.process_time()
        table, _stats = await fast.read()
        took, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        loop.remove_reader(kern.theirs.fileno())
        fast.close()
        kern.theirs.close()
    return cpu, took, sum(len(d) for _s, d in table.values())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size_args(p)
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    cpu, wall, n = min(asyncio.run(read_once(a.vs, a.rs)) for _ in range(a.runs))
    print(f"## IPVS table read, {n} destinations, natively (stand-in kernel in the same "
          f"process, its sending counted too; CPU seconds, best of {a.runs}; wall {wall:.3f} s "
          "on this shared machine)\n")
    print("| benchmark | director | keepalived | ratio | target | result |\n"
          "|---|---|---|---|---|---|")
    print(f"| ipvs: read and decode {n} destinations with counters | {cpu:.3f} s | - | - | "
          f"< 1 s | {'pass' if cpu < 1 else 'FAIL'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
