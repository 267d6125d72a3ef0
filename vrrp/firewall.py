"""The VIP drop rules of instances without accept mode, in nftables (keepalived's
vrrp_firewall/vrrp_nftables behaviour, our own code).

RFC 5798: a MASTER that is not the address owner must not accept packets addressed to
the VIPs unless it is in accept mode. keepalived does this with a table of its own
(default name `keepalived`, or `nftables NAME`): per address family an `in` chain
dropping `daddr @vips` and an `out` chain dropping `saddr @vips`, hooked at
`nftables_priority` (default -1), with counters under `nftables_counters`. IPv6
keeps neighbour discovery flowing, and link-local VIPs go into a set keyed by address
and interface. An instance's VIPs are in the sets while it is MASTER.

The decisions (which table, which families, the JSON commands, what to add or delete)
are pure functions; `Nftables` sends a JSON document to libnftables through ctypes
(the kernel talks netlink to it; no command strings are built).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import json
import logging
from collections.abc import Iterable
from typing import Any

import attrs

from conf.model import Config, VirtualIp, VrrpInstance

log = logging.getLogger("director.vrrp")

DEFAULT_TABLE = "keepalived"  # keepalived's DEFAULT_NFTABLES_TABLE
FAMILIES = {4: "ip", 6: "ip6"}

# one address in a set: (family, address, interface or None); the interface (its index,
# or its name) only for IPv6 link-local addresses, which are only unique per interface
Element = tuple[int, str, int | str | None]


@attrs.frozen
class Plan:
    table: str
    priority: int = -1
    counters: bool = False
    families: frozenset[int] = frozenset()
    ifindex: bool = False  # nftables_ifindex


def drops(inst: VrrpInstance) -> bool:
    """keepalived blocks the VIPs of an instance that is neither the address owner
    (priority 255, accept by default) nor in accept mode."""
    return inst.priority != 255 and not inst.accept


def plan(cfg: Config) -> Plan | None:
    """The table the config needs, or None. `nftables` (or `vrrp_iptables`, mapped to
    it in conf/) names it; an instance that drops without one gets keepalived's default
    name, as keepalived built with nftables does. Tables are made per family in use."""
    g = cfg.global_defs
    dropping = [i for i in cfg.vrrp_instances if drops(i)]
    if not dropping:
        return None
    families = frozenset(v.family for i in dropping
                         for v in (*i.virtual_ipaddress, *i.virtual_ipaddress_excluded))
    if not families:
        return None
    if g.nftables is None:
        log.info("no_accept or strict mode specified, but no firewall configured - "
                 "using nftables table '%s'", DEFAULT_TABLE)
    return Plan(table=g.nftables or DEFAULT_TABLE, priority=g.nftables_priority,
                counters=g.nftables_counters, families=families, ifindex=g.nftables_ifindex)


def by_name(inst: VrrpInstance, ifindex: bool) -> bool:
    """keepalived keys an instance's link-local VIPs by interface name when it does not
    track its interface (which may then come and go with another index), unless
    `nftables_ifindex` asks for indexes anyway; else by index."""
    return inst.dont_track_primary and not ifindex


def elements(vips: Iterable[VirtualIp], index_of, name_of=None) -> set[Element]:  # type: ignore[no-untyped-def]
    """The set elements of `vips`; a link-local VIP's interface is `name_of(vip)` when
    given (keyed by name), else `index_of(vip)`."""
    out: set[Element] = set()
    for v in vips:
        if v.family == 6 and ipaddress.ip_address(v.address).is_link_local:
            out.add((6, v.address, name_of(v) if name_of else index_of(v)))
        else:
            out.add((v.family, v.address, None))
    return out


# -- JSON commands (libnftables-json(5)) --------------------------------------------
def _table(p: Plan, fam: str) -> dict[str, Any]:
    return {"family": fam, "name": p.table}


def _chain(p: Plan, fam: str, name: str, hook: str | None) -> dict[str, Any]:
    c: dict[str, Any] = {"family": fam, "table": p.table, "name": name}
    if hook:
        c.update(type="filter", hook=hook, prio=p.priority, policy="accept")
    return {"add": {"chain": c}}


def _rule(p: Plan, fam: str, chain: str, *expr: dict[str, Any]) -> dict[str, Any]:
    verdict = expr[-1]
    body = list(expr[:-1])
    if p.counters:
        body.append({"counter": {"packets": 0, "bytes": 0}})
    return {"add": {"rule": {"family": fam, "table": p.table, "chain": chain,
                             "expr": [*body, verdict]}}}


def _match(left: dict[str, Any], right: Any) -> dict[str, Any]:
    return {"match": {"op": "==", "left": left, "right": right}}


def _addr(fam: str, field: str) -> dict[str, Any]:
    return {"payload": {"protocol": fam, "field": field}}


DROP: dict[str, Any] = {"drop": None}
ACCEPT: dict[str, Any] = {"accept": None}
ND = {"set": ["nd-neighbor-solicit", "nd-neighbor-advert"]}
LINK_LOCAL = {"prefix": {"addr": "fe80::", "len": 10}}


def setup_commands(p: Plan) -> list[dict[str, Any]]:
    """Each family's table made afresh: a leftover of a crashed run is replaced in the
    same transaction (add-then-delete makes the delete safe when there is none)."""
    cmds: list[dict[str, Any]] = []
    for family in sorted(p.families):
        fam = FAMILIES[family]
        t = _table(p, fam)
        cmds += [{"add": {"table": t}}, {"delete": {"table": t}}, {"add": {"table": t}},
                 _chain(p, fam, "in", "input"), _chain(p, fam, "out", "output"),
                 {"add": {"set": {"family": fam, "table": p.table, "name": "vips",
                                  "type": "ipv4_addr" if family == 4 else "ipv6_addr"}}}]
        if family == 6:
            ll = {"family": fam, "table": p.table, "name": "vips_link_local",
                  "type": ["ipv6_addr", "iface_index"]}
            ll_name = {"family": fam, "table": p.table, "name": "vips_link_local_name",
                       "type": ["ipv6_addr", "ifname"]}
            icmp = {"payload": {"protocol": "icmpv6", "field": "type"}}
            cmds += [{"add": {"set": ll}}, {"add": {"set": ll_name}},
                     _chain(p, fam, "in_link_local", None),
                     _chain(p, fam, "out_link_local", None),
                     _rule(p, fam, "in", _match(icmp, ND), ACCEPT),
                     _rule(p, fam, "in", _match(_addr(fam, "daddr"), LINK_LOCAL),
                           {"goto": {"target": "in_link_local"}}),
                     _rule(p, fam, "out", _match(icmp, ND), ACCEPT),
                     _rule(p, fam, "out", _match(_addr(fam, "saddr"), LINK_LOCAL),
                           {"goto": {"target": "out_link_local"}}),
                     _rule(p, fam, "in_link_local", _match(
                         {"concat": [_addr(fam, "daddr"), {"meta": {"key": "iif"}}]},
                         "@vips_link_local"), DROP),
                     _rule(p, fam, "out_link_local", _match(
                         {"concat": [_addr(fam, "saddr"), {"meta": {"key": "oif"}}]},
                         "@vips_link_local"), DROP),
                     _rule(p, fam, "in_link_local", _match(
                         {"concat": [_addr(fam, "daddr"), {"meta": {"key": "iifname"}}]},
                         "@vips_link_local_name"), DROP),
                     _rule(p, fam, "out_link_local", _match(
                         {"concat": [_addr(fam, "saddr"), {"meta": {"key": "oifname"}}]},
                         "@vips_link_local_name"), DROP)]
        cmds += [_rule(p, fam, "in", _match(_addr(fam, "daddr"), "@vips"), DROP),
                 _rule(p, fam, "out", _match(_addr(fam, "saddr"), "@vips"), DROP)]
    return cmds


def teardown_commands(p: Plan) -> list[dict[str, Any]]:
    cmds: list[dict[str, Any]] = []
    for family in sorted(p.families):
        t = _table(p, FAMILIES[family])
        cmds += [{"add": {"table": t}}, {"delete": {"table": t}}]
    return cmds


def element_commands(p: Plan, op: str, elems: Iterable[Element]) -> list[dict[str, Any]]:
    """`op` ("add" or "delete") of `elems`, one command per set touched."""
    by_set: dict[tuple[int, str], list[Any]] = {}
    for family, addr, idx in sorted(elems, key=lambda e: (e[0], e[1], str(e[2]))):
        if family not in p.families:
            continue
        if idx is None:
            by_set.setdefault((family, "vips"), []).append(addr)
        else:
            name = "vips_link_local_name" if isinstance(idx, str) else "vips_link_local"
            by_set.setdefault((family, name), []).append({"concat": [addr, idx]})
    return [{op: {"element": {"family": FAMILIES[f], "table": p.table, "name": name,
                              "elem": elem}}}
            for (f, name), elem in by_set.items()]


def changes(held: dict[str, set[Element]], owner: str,
            wanted: set[Element]) -> tuple[set[Element], set[Element]]:
    """What to add and delete when `owner` (an instance) now wants `wanted` in the sets,
    others keeping theirs: an element stays while any owner wants it."""
    others: set[Element] = set()
    for name, elems in held.items():
        if name != owner:
            others |= elems
    before = held.get(owner, set()) | others
    after = wanted | others
    return after - before, before - after


# -- I/O -------------------------------------------------------------------------
NFT_CTX_DEFAULT = 0
NFT_CTX_OUTPUT_JSON = 1 << 4


class Nftables:
    """libnftables with JSON in and out, through ctypes. Not thread-safe: one thread."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("nftables") or "libnftables.so.1"
        lib = ctypes.CDLL(name)
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self.lib = lib
        self.ctx = lib.nft_ctx_new(NFT_CTX_DEFAULT)
        lib.nft_ctx_output_set_flags(self.ctx, NFT_CTX_OUTPUT_JSON)
        lib.nft_ctx_buffer_output(self.ctx)
        lib.nft_ctx_buffer_error(self.ctx)

    def run(self, cmds: list[dict[str, Any]]) -> tuple[bool, str]:
        """One transaction; (ok, the error or the JSON output)."""
        doc = json.dumps({"nftables": [{"metainfo": {"json_schema_version": 1}}, *cmds]})
        rc = self.lib.nft_run_cmd_from_buffer(self.ctx, doc.encode())
        out = (self.lib.nft_ctx_get_output_buffer(self.ctx) or b"").decode(errors="replace")
        err = (self.lib.nft_ctx_get_error_buffer(self.ctx) or b"").decode(errors="replace")
        return rc == 0, (out if rc == 0 else err.strip())

    def close(self) -> None:
        if self.ctx:
            self.lib.nft_ctx_free(self.ctx)
            self.ctx = None


class Firewall:
    """The drop rules of one VRRP daemon (kept across a reload). Runs on the rtnetlink
    worker's thread, so that the sets change in order with the addresses."""

    def __init__(self, p: Plan | None) -> None:
        self.plan = p
        self.held: dict[str, set[Element]] = {}
        self.nft: Nftables | None = None
        self.up = False

    def _run(self, what: str, cmds: list[dict[str, Any]]) -> bool:
        if not cmds:
            return True
        try:
            if self.nft is None:
                self.nft = Nftables()
        except OSError as e:
            log.error("%s: libnftables not available: %s", what, e)
            return False
        ok, msg = self.nft.run(cmds)
        if not ok:
            log.error("%s: nftables refused: %s", what, msg)
        return ok

    def start(self) -> None:
        p = self.plan
        if p is None:
            return
        log.info("Setting up nftables table %s (%s)", p.table,
                 ", ".join(FAMILIES[f] for f in sorted(p.families)))
        self.up = self._run(f"creating nftables table {p.table}", setup_commands(p))

    def reconfigure(self, new: Plan | None) -> None:
        """At a reload: keepalived cannot change the table's name either; a family the
        new config needs is added."""
        old = self.plan
        if new is None or (old is not None and new == old):
            return
        if old is not None and (new.table, new.priority, new.counters) != \
                (old.table, old.priority, old.counters):
            log.warning("Cannot change the nftables table, priority or counters at a "
                        "reload - restart to apply; keeping table %s", old.table)
            new = attrs.evolve(old, families=old.families | new.families)
        extra = new.families - (old.families if old is not None else frozenset())
        self.plan = new
        if extra:
            self.up = self._run(f"creating nftables table {new.table}",
                                setup_commands(attrs.evolve(new, families=extra))) or self.up

    def set(self, owner: str, wanted: set[Element]) -> None:
        """`owner`'s VIPs in the sets are now `wanted` (empty: none)."""
        if self.plan is None or not self.up:
            return
        add, delete = changes(self.held, owner, wanted)
        p = self.plan
        if delete:
            self._run(f"({owner}) removing firewall drop rule", element_commands(
                p, "delete", delete))
        if add:
            self._run(f"({owner}) setting firewall drop rule", element_commands(
                p, "add", add))
        if wanted:
            self.held[owner] = set(wanted)
        else:
            self.held.pop(owner, None)

    def stop(self) -> None:
        if self.plan is not None and self.up:
            log.info("Removing nftables table %s", self.plan.table)
            self._run(f"removing nftables table {self.plan.table}",
                      teardown_commands(self.plan))
            self.up = False
        self.held.clear()
        if self.nft is not None:
            self.nft.close()
            self.nft = None
