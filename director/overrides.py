"""Operators' run-time overrides of real servers (`director ctl drain|enable|weight|clear`).
Pure: commands and connection counts in, overrides and messages out; time passed in.

- an override never brings back a real server its checkers say is down, and never
  changes the quorum arithmetic (that stays on the checkers' verdicts and weights);
- `weight N`: an alive real server serves at N instead of its configured/dynamic weight;
- `drain`: weight 0 at once (new connections go elsewhere, established ones carry on),
  then the destination leaves the table when its active connections reach 0, or at
  the timeout; it stays out (drained) until `enable` or `clear`;
- `enable` ends a drain (a weight override stays); `clear` drops every override.
Overrides are keyed by the virtual server's and real server's identity, not by position,
so a reload keeps them for every real server the new config still has.
"""

from __future__ import annotations

import attrs

from conf import aot
from conf.model import RealServer, VirtualServer

from .ipvs_table import DestSpec

DRAINING, DRAINED = "draining", "drained"


@attrs.frozen
class Override:
    weight: int | None = None
    drain: str | None = None  # None | DRAINING | DRAINED
    deadline: float | None = None  # monotonic; a drain's timeout
    who: str = ""
    since: float = 0.0  # wall clock of the last change, for the views

    def view(self) -> dict[str, object]:
        return {"weight": self.weight, "drain": self.drain, "who": self.who,
                "since": self.since}


def apply(spec: DestSpec | None, alive: bool, ov: Override | None) -> DestSpec | None:
    """The destination the pool wants (None: not in the table) after the override."""
    if spec is None or ov is None:
        return spec
    if ov.drain == DRAINED:
        return None
    if ov.drain == DRAINING:
        return aot.evolve(spec, weight=0)
    if ov.weight is not None and alive:
        return aot.evolve(spec, weight=ov.weight)
    return spec


@attrs.frozen
class Outcome:
    override: Override | None
    message: str
    changed: bool = True


def command(ov: Override | None, cmd: str, *, weight: int | None = None,
            timeout: float | None = None, now: float, wall: float, who: str,
            name: str) -> Outcome:
    """What `cmd` does to a real server's override. `name` labels it in the message."""
    if cmd == "drain":
        if ov is not None and ov.drain == DRAINED:
            return Outcome(ov, f"{name} is already drained", changed=False)
        deadline = now + timeout if timeout is not None else None
        new: Override | None = Override(weight=ov.weight if ov else None, drain=DRAINING,
                                        deadline=deadline, who=who, since=wall)
        limit = f" (at most {timeout:g} s)" if timeout is not None else ""
        return Outcome(new, f"{name}: draining at weight 0 until its connections end{limit}")
    if cmd == "enable":
        if ov is None or ov.drain is None:
            return Outcome(ov, f"{name} is not drained: nothing to enable", changed=False)
        new = Override(weight=ov.weight, who=who, since=wall) if ov.weight is not None \
            else None
        return Outcome(new, f"{name}: back in service")
    if cmd == "weight":
        assert weight is not None
        return Outcome(Override(weight=weight, who=who, since=wall),
                       f"{name}: weight {weight} (override)")
    if cmd == "clear":
        if ov is None:
            return Outcome(None, f"{name} has no override", changed=False)
        return Outcome(None, f"{name}: overrides cleared")
    raise ValueError(f"not a real server command: {cmd}")


def drain_step(ov: Override, active: int, now: float) -> tuple[Override, str | None]:
    """A draining real server with `active` connections at `now`: drained yet? Returns
    the override and, when the drain just ended, why."""
    if ov.drain != DRAINING:
        return ov, None
    if active <= 0:
        return aot.evolve(ov, drain=DRAINED, deadline=None), "its active connections ended"
    if ov.deadline is not None and now >= ov.deadline:
        return aot.evolve(ov, drain=DRAINED, deadline=None), \
            f"timeout with {active} active connection{'s' * (active != 1)}"
    return ov, None


# -- naming virtual and real servers on the command line ---------------------------------
def _host_port(address: str | None, port: int | None) -> set[str]:
    if address is None:
        return set()
    p = port or 0
    return {f"{address}:{p}", f"[{address}]:{p}"} if ":" not in address \
        else {f"[{address}]:{p}"}


def vs_names(vs: VirtualServer) -> set[str]:
    proto = vs.protocol.lower()
    names = {vs.key.lower()}
    if vs.fwmark is not None:
        names |= {f"fwm {vs.fwmark}", f"fwmark {vs.fwmark}", f"fwm{vs.fwmark}"}
    if vs.group is not None:
        names |= {vs.group.lower(), f"{vs.group.lower()}/{proto}"}
    for n in _host_port(vs.address, vs.port):
        names |= {n.lower(), f"{n.lower()}/{proto}"}
    return names


def rs_names(rs: RealServer) -> set[str]:
    return {n.lower() for n in _host_port(rs.address, rs.port)}


def find_vs(servers: tuple[VirtualServer, ...] | list[VirtualServer], spec: str) -> int:
    """The index of the virtual server `spec` names; ValueError saying why not."""
    want = " ".join(spec.lower().split())
    hits = [i for i, vs in enumerate(servers) if want in vs_names(vs)]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise ValueError(f"virtual server {spec!r} is ambiguous: add /tcp, /udp or /sctp")
    known = ", ".join(sorted({vs.key for vs in servers})[:10]) or "none configured"
    raise ValueError(f"no virtual server {spec!r} (known: {known})")


def find_rs(vs: VirtualServer, spec: str) -> int:
    want = spec.lower().strip()
    hits = [i for i, rs in enumerate(vs.real_servers)
            if want in rs_names(rs) or want in (rs.address.lower(), f"[{rs.address.lower()}]")]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise ValueError(f"real server {spec!r} of {vs.key} is ambiguous: give ADDRESS:PORT")
    known = ", ".join(f"{rs.address}:{rs.port or 0}" for rs in vs.real_servers[:10]) or "none"
    raise ValueError(f"{vs.key} has no real server {spec!r} (its real servers: {known})")
