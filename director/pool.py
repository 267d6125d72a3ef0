"""The pool logic of one virtual server, as keepalived's checker process does it. Pure.

Inputs: checker results and dynamic weights. Outputs: the destinations the
virtual server's IPVS services should have, and events (real server up/down,
quorum gained/lost) for notify scripts, the LVS FIFO and the log.

- a real server is alive when all its checkers are up (no checker: always);
  `alpha` (on the real server or inherited) starts it down;
- a dead real server leaves the table, or stays with weight 0 under
  `inhibit_on_failure`;
- quorum: the alive weight sum against `quorum`, with `hysteresis` (lost below
  quorum - hysteresis, gained at quorum + hysteresis);
- quorum lost with a `sorry_server`: the sorry server alone serves (the alive
  real servers are taken out, or weight 0 with inhibit); `sorry_server_inhibit`
  keeps the sorry server in the table at weight 0 while unused.
"""

from __future__ import annotations

import attrs

from conf import aot
from conf.model import RealServer, Script, VirtualServer

from .ipvs_table import DestKey, Dests, DestSpec
from .overrides import Override, apply

_TUN_TYPES = {"ipip": 0, "gue": 1, "gre": 2}
_TUN_CSUM = {"nocsum": 0, "csum": 1, "remcsum": 2}


@attrs.frozen
class RsEvent:
    """A real server went up or down (notify_up / notify_down)."""

    up: bool
    log: str
    fifo: str  # keepalived's LVS notify FIFO line
    subject: str  # the real server, in its virtual server: its scripts run in order
    script: Script | None = None


@attrs.frozen
class QuorumEvent:
    """A virtual server gained or lost its quorum (quorum_up / quorum_down)."""

    up: bool
    log: str
    fifo: str
    subject: str  # the virtual server: its quorum scripts run in order
    script: Script | None = None


Event = RsEvent | QuorumEvent


@attrs.define
class RsState:
    rs: RealServer
    checkers_up: list[bool]
    weight: int
    override: Override | None = None  # the operator's (director ctl), kept over reloads
    # (rs, key, spec at weight): made once per server and weight, so that the table and
    # the next diff share the objects (compared by identity, not field by field)
    made: tuple[RealServer, DestKey, DestSpec] | None = attrs.field(
        default=None, eq=False, repr=False)

    @property
    def alive(self) -> bool:
        return all(self.checkers_up)


def _proto(vs: VirtualServer) -> str:
    return vs.protocol.lower()


def rs_name(vs: VirtualServer, rs: RealServer) -> str:
    return f"[{rs.address}]:{_proto(vs)}:{rs.port or 0}"


def tunnel(spec: str | None) -> tuple[str | None, int, int]:
    """`gue port 6080 csum` → (type, port, flags)."""
    if not spec:
        return None, 0, 0
    words = spec.split()
    port, flags = 0, 0
    for i, w in enumerate(words[1:], 1):
        if w == "port" and i + 1 < len(words):
            port = int(words[i + 1])
        elif w in _TUN_CSUM:
            flags = _TUN_CSUM[w]
    return words[0], port, flags


_SPECS: dict[tuple[str, int, int, int, str | None], DestSpec] = {}
_SPECS_MAX = 4096  # distinct settings kept (weights times methods times thresholds)


def dest_spec(forward: str, weight: int, u_threshold: int, l_threshold: int,
              tunnel_spec: str | None) -> DestSpec:
    """One object for equal settings: 10,000 real servers of a big config have a handful
    of distinct ones (an object each would be ~1 MiB, and building one costs more than
    looking its settings up). Frozen, so sharing is safe."""
    settings = (forward, weight, u_threshold, l_threshold, tunnel_spec)
    got = _SPECS.get(settings)
    if got is None:
        if len(_SPECS) >= _SPECS_MAX:
            _SPECS.clear()
        ttype, tport, tflags = tunnel(tunnel_spec)
        got = _SPECS[settings] = DestSpec(
            forward=forward, weight=weight, u_threshold=u_threshold,
            l_threshold=l_threshold, tun_type=ttype, tun_port=tport, tun_flags=tflags)
    return got


class Pool:
    def __init__(self, vs: VirtualServer) -> None:
        self.vs = vs
        self.servers = [
            RsState(rs, [not c.alpha for c in rs.checkers], rs.weight) for rs in vs.real_servers
        ]
        self.quorum_up = self.weight_sum() >= vs.quorum

    def weight_sum(self) -> int:
        return sum(s.weight for s in self.servers if all(s.checkers_up))  # s.alive, inlined

    def set_checker(self, rs_index: int, checker_index: int, up: bool) -> list[Event]:
        state = self.servers[rs_index]
        was = state.alive
        state.checkers_up[checker_index] = up
        return self._after(state, was)

    def set_weight(self, rs_index: int, weight: int) -> list[Event]:
        """A dynamic weight (MISC_CHECK misc_dynamic, FILE_CHECK)."""
        state = self.servers[rs_index]
        state.weight = max(0, weight)
        return self._quorum()

    def _after(self, state: RsState, was: bool) -> list[Event]:
        events = [self._rs_event(state.rs, state.alive)] if state.alive != was else []
        return events + self._quorum()

    def _rs_event(self, rs: RealServer, up: bool) -> Event:
        vs = self.vs
        name = rs_name(vs, rs)
        subject = f"RS {name} {vs.key}"
        return RsEvent(
            up,
            f"{'Adding' if up else 'Removing'} service {name} "
            f"{'to' if up else 'from'} VS {vs.key}",
            f"{subject} {'UP' if up else 'DOWN'}",
            subject,
            rs.notify_up if up else rs.notify_down,
        )

    def _quorum_event(self, up: bool, log: str) -> Event:
        vs = self.vs
        subject = f"VS {vs.key}"
        return QuorumEvent(up, log, f"{subject} {'UP' if up else 'DOWN'}", subject,
                           vs.quorum_up if up else vs.quorum_down)

    def _quorum(self) -> list[Event]:
        vs = self.vs
        total = self.weight_sum()
        if self.quorum_up and total < vs.quorum - vs.hysteresis:
            self.quorum_up = False
            return [self._quorum_event(False, f"Lost quorum {vs.quorum}-{vs.hysteresis}="
                                              f"{vs.quorum - vs.hysteresis} > {total} for VS "
                                              f"{vs.key}")]
        if not self.quorum_up and total >= vs.quorum + vs.hysteresis:
            self.quorum_up = True
            return [self._quorum_event(True, f"Gained quorum {vs.quorum}+{vs.hysteresis}="
                                             f"{vs.quorum + vs.hysteresis} <= {total} for VS "
                                             f"{vs.key}")]
        return []

    def dests(self) -> Dests:
        vs = self.vs
        out: Dests = {}
        sorry = vs.sorry_server
        use_sorry = sorry is not None and not self.quorum_up
        for s in self.servers:
            rs = s.rs
            made = s.made
            if made is None or made[0] is not rs or made[2].weight != s.weight:
                made = s.made = (rs, DestKey(rs.address, rs.port or 0), dest_spec(
                    rs.lvs_method or vs.lb_kind, s.weight, rs.uthreshold or 0,
                    rs.lthreshold or 0, rs.tunnel_type or vs.tunnel_type))
            _rs, key, spec = made
            up = s.alive and not use_sorry
            want = spec if up else (
                aot.evolve(spec, weight=0) if rs.inhibit_on_failure else None)
            if s.override is not None:
                want = apply(want, up, s.override)
            if want is not None:
                out[key] = want
        if sorry is not None and (use_sorry or vs.sorry_server_inhibit):
            ttype, tport, tflags = tunnel(vs.tunnel_type)
            out[DestKey(sorry.address, sorry.port or 0)] = DestSpec(
                forward=vs.sorry_server_lvs_method or vs.lb_kind,
                weight=1 if use_sorry else 0,
                tun_type=ttype, tun_port=tport, tun_flags=tflags,
            )
        return out

    def stop_events(self) -> list[Event]:
        """With `omega`, keepalived runs the down scripts when it stops."""
        if not self.vs.omega:
            return []
        vs = self.vs
        events = [self._rs_event(s.rs, False) for s in self.servers if s.alive]
        if self.quorum_up:
            events.append(self._quorum_event(False, f"Stopping VS {vs.key}"))
        return events
