"""IPVS tables as plain values, and the minimal diff between two of them. Pure.

A table maps a service key to its settings and its destinations. The desired
table comes from the config and the pool logic; the current one is read from the
kernel (or the dry-run plane). `diff` says what to send so that current becomes
desired, touching no service that is not ours.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable

import attrs

# kernel service flags (include/uapi/linux/ip_vs.h)
F_PERSISTENT = 0x0001
F_ONEPACKET = 0x0004
F_SCHED1 = 0x0008
F_SCHED2 = 0x0010
F_SCHED3 = 0x0020
SCHED_FLAG_BITS = {
    "sh-fallback": F_SCHED1, "sh-port": F_SCHED2, "mh-fallback": F_SCHED1, "mh-port": F_SCHED2,
    "flag-1": F_SCHED1, "flag-2": F_SCHED2, "flag-3": F_SCHED3,
}
# the flags we set; the kernel adds IP_VS_SVC_F_HASHED (0x2) by itself
FLAG_MASK = F_PERSISTENT | F_ONEPACKET | F_SCHED1 | F_SCHED2 | F_SCHED3


@attrs.frozen(order=True)
class SvcKey:
    family: int  # 4 | 6
    protocol: str  # TCP | UDP | SCTP; "" for a fwmark service
    address: str  # "" for a fwmark service
    port: int
    fwmark: int = 0

    def __str__(self) -> str:
        if self.fwmark:
            return f"FWM {self.fwmark}" + (" IPv6" if self.family == 6 else "")
        return f"[{self.address}]:{self.protocol.lower()}:{self.port}"


@attrs.frozen
class SvcSpec:
    scheduler: str = "wlc"
    flags: int = 0
    timeout: int = 0  # persistence timeout, seconds
    netmask: str | None = None  # persistence granularity
    pe_name: str | None = None


@attrs.frozen(order=True)
class DestKey:
    address: str
    port: int

    def __str__(self) -> str:
        return f"[{self.address}]:{self.port}"


@attrs.frozen
class DestSpec:
    forward: str = "NAT"  # NAT | DR | TUN
    weight: int = 1
    u_threshold: int = 0
    l_threshold: int = 0
    tun_type: str | None = None  # ipip | gue | gre, for TUN
    tun_port: int = 0
    tun_flags: int = 0


# the keys' order (attrs' order=True) as C-level sort keys: attrs' generated __lt__ builds
# two tuples in Python per comparison, most of a 10,000-server diff's time
svc_order = operator.attrgetter("family", "protocol", "address", "port", "fwmark")
dest_order = operator.attrgetter("address", "port")

Dests = dict[DestKey, DestSpec]
Table = dict[SvcKey, tuple[SvcSpec, Dests]]


@attrs.frozen
class Op:
    """One netlink command. `what` is add/edit/del; `dest` is None for a service op."""

    what: str
    svc: SvcKey
    spec: SvcSpec | None = None
    dest: DestKey | None = None
    dspec: DestSpec | None = None

    def __str__(self) -> str:
        if self.dest is None:
            return f"{self.what} service {self.svc}"
        return f"{self.what} real server {self.dest} to service {self.svc}"


def diff(desired: Table, current: Table, owned: Iterable[SvcKey] = (),
         flush: bool = False) -> list[Op]:
    """Ops that turn `current` into `desired`.

    Services in `current` but not in `desired` are deleted only when they are in
    `owned` (we programmed them before: a reload removed them) or `flush` is set;
    anything else is someone else's and is left alone.
    """
    ops: list[Op] = []
    owned = set(owned)
    for key in sorted(current, key=svc_order):
        if key not in desired and (flush or key in owned):
            ops.append(Op("del", key))
    for key in sorted(desired, key=svc_order):
        spec, dests = desired[key]
        have = current.get(key)
        if have is None:
            ops.append(Op("add", key, spec))
            ops.extend(Op("add", key, dest=d, dspec=dests[d])
                       for d in sorted(dests, key=dest_order))
            continue
        cur_spec, cur_dests = have
        if cur_dests == dests:  # the common case in a big table: nothing to do here
            if cur_spec != spec:
                ops.append(Op("edit", key, spec))
            continue
        if cur_spec != spec:
            ops.append(Op("edit", key, spec))
        for d in sorted(cur_dests, key=dest_order):
            if d not in dests:
                ops.append(Op("del", key, dest=d))
        for d in sorted(dests, key=dest_order):
            want = dests[d]
            got = cur_dests.get(d)
            if got is None:
                ops.append(Op("add", key, dest=d, dspec=want))
            elif got != want:
                ops.append(Op("edit", key, dest=d, dspec=want))
    return ops


def apply_ops(table: Table, ops: Iterable[Op]) -> Table:
    """The table after `ops` (what the dry-run plane keeps, and what tests check)."""
    out: Table = {k: (s, dict(d)) for k, (s, d) in table.items()}
    apply_in_place(out, ops)
    return out


def apply_in_place(out: Table, ops: Iterable[Op]) -> None:
    for op in ops:
        if op.dest is None:
            if op.what == "del":
                out.pop(op.svc, None)
            elif op.spec is not None:  # add, edit
                out[op.svc] = (op.spec, out[op.svc][1] if op.what != "add" else {})
        elif op.what == "del":
            out[op.svc][1].pop(op.dest, None)
        elif op.dspec is not None:
            out[op.svc][1][op.dest] = op.dspec


class Phases:
    """The order in which ops go to the kernel, and what a refusal means for the rest:
    service deletions, service additions and changes, then real servers (netlink
    answers each by sequence number, so the ops of one phase go out together); the real
    servers of a service the kernel refused are not sent. Pure: the dataplane (on the
    event loop) and the first programming (blocking) each send the ops their own way.

        p = Phases(ops)
        for phase in p.phases:
            todo = p.todo(phase)
            for op, error in zip(todo, send(todo)):
                lines = p.done(op, error)  # (format, args) to log for a refusal
    """

    __slots__ = ("phases", "failed", "refused")

    def __init__(self, ops: Iterable[Op]) -> None:
        ops = list(ops)
        self.phases = [
            [op for op in ops if op.dest is None and op.what == "del"],
            [op for op in ops if op.dest is None and op.what != "del"],
            [op for op in ops if op.dest is not None],
        ]
        self.failed: list[tuple[Op, str]] = []  # the ops not applied, with the reason
        self.refused: set[SvcKey] = set()

    def todo(self, phase: list[Op]) -> list[Op]:
        """The ops of `phase` to send: not those of a refused service."""
        out = []
        for op in phase:
            if op.dest is not None and op.svc in self.refused:
                self.failed.append((op, "its service was refused"))
            else:
                out.append(op)
        return out

    def done(self, op: Op, reason: str | None) -> list[tuple[str, tuple[object, ...]]]:
        """`op` sent: applied (`reason` None) or refused; the lines to log for it."""
        if reason is None:
            return []
        self.failed.append((op, reason))
        lines: list[tuple[str, tuple[object, ...]]] = [("IPVS: cannot %s: %s", (op, reason))]
        if op.dest is None and op.what == "add":
            self.refused.add(op.svc)
            lines.append(("IPVS: skipping the real servers of %s", (op.svc,)))
        return lines
