"""What to announce, decided purely: the pools' quorum states and the config in, the
prefixes wanted out; the wanted set and what is announced in, the steps out.

A virtual server with `bgp_announce` wants its address (its group's addresses) announced
while its pool has quorum. Several virtual servers on one address (ports 80 and 443)
announce it only while every one of them has quorum: a director is a next hop for the
whole address, so it advertises only what it can serve in full; the others still do.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

import attrs

from conf.bgp import announce_addresses
from conf.model import Config


@attrs.frozen(order=True)
class Prefix:
    """A host route to a VIP, and the device its address goes on."""

    address: str
    prefixlen: int
    dev: str

    def __str__(self) -> str:
        return f"{self.address}/{self.prefixlen}"

    @property
    def family(self) -> int:
        return 6 if ":" in self.address else 4

    @classmethod
    def host(cls, address: str, dev: str) -> Prefix:
        a = ipaddress.ip_address(address)
        return cls(str(a), a.max_prefixlen, dev)


@attrs.frozen
class Want:
    """One configured prefix: whether the pools want it announced, and why."""

    prefix: Prefix
    up: bool
    reason: str

    def to_json(self) -> dict[str, object]:
        p = self.prefix
        return {"address": p.address, "prefixlen": p.prefixlen, "dev": p.dev, "up": self.up,
                "reason": self.reason}

    @classmethod
    def from_json(cls, d: dict[str, object]) -> Want:
        address, plen, dev = d["address"], d["prefixlen"], d["dev"]
        if not (isinstance(address, str) and isinstance(plen, int) and isinstance(dev, str)):
            raise ValueError("address, prefixlen and dev are needed")
        ipaddress.ip_network(f"{address}/{plen}")  # refuses what is not a prefix
        return cls(Prefix(address, plen, dev), bool(d.get("up")), str(d.get("reason", "")))


@attrs.frozen
class Announce:
    prefix: Prefix
    reason: str


@attrs.frozen
class Withdraw:
    prefix: Prefix
    reason: str


Step = Announce | Withdraw


def wants(cfg: Config, quorum: Sequence[bool]) -> tuple[Want, ...]:
    """Every prefix of a `bgp_announce` virtual server; `quorum[i]` is the quorum state
    of `cfg.virtual_servers[i]`'s pool."""
    if cfg.bgp_speaker is None:
        return ()
    up: dict[Prefix, bool] = {}
    why: dict[Prefix, list[str]] = {}
    for vs, has_quorum in zip(cfg.virtual_servers, quorum, strict=True):
        ann = vs.bgp_announce
        if ann is None:
            continue
        for address in announce_addresses(vs, cfg):
            p = Prefix.host(address, ann.dev)
            up[p] = up.get(p, True) and has_quorum
            why.setdefault(p, []).append(f"VS {vs.key} {'has' if has_quorum else 'lost'} "
                                         f"quorum")
    return tuple(Want(p, up[p], ", ".join(why[p])) for p in sorted(up))


def keep_configured(current: Iterable[Want], cfg: Config) -> tuple[Want, ...]:
    """Before a reload is applied: the current wants, without the prefixes the new
    config no longer announces (their withdrawal comes first)."""
    still = {w.prefix for w in wants(cfg, [True] * len(cfg.virtual_servers))}
    return tuple(w for w in current if w.prefix in still)


def plan(announced: Iterable[Prefix], wanted: Iterable[Want]) -> list[Step]:
    """The steps that make `announced` equal to the wanted set: withdrawals first (a
    prefix that moves to another device is withdrawn, then announced again)."""
    have = set(announced)
    by_prefix = {w.prefix: w for w in wanted}
    want = {p for p, w in by_prefix.items() if w.up}
    steps: list[Step] = []
    for p in sorted(have - want):
        w = by_prefix.get(p)
        steps.append(Withdraw(p, w.reason if w is not None else "no longer configured"))
    for p in sorted(want - have):
        steps.append(Announce(p, by_prefix[p].reason))
    return steps
