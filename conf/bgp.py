"""director's BGP extension of the language: `bgp_speaker { ... }` at the top level and
`bgp_announce [dev DEV]` in a virtual_server. keepalived has neither (it refuses both
keywords); conf/BGP.md documents them.

There is no keepalived repair to mirror here, so the rules are ours: a speaker that
could not establish a session as written (a bad or missing AS, router id or neighbour
address, an engine we cannot run) is an error, because running on without announcing
would leave the router sending no traffic to a healthy director with only a log line
to explain it. A `bgp_announce` without a speaker is a warning: the virtual server
serves as keepalived would, only nothing is announced.
"""

from __future__ import annotations

from . import aot
from . import values as v
from .addrsyntax import SyntaxProblem, parse_ip
from .errors import Diagnostics
from .model import BgpAnnounce, BgpNeighbor, BgpSpeaker, Config, VirtualServer
from .tree import Node

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

ENGINES = ("exabgp",)  # room for bird, frr, gobgp behind director/bgp/engine.py
FUTURE_ENGINES = ("bird", "frr", "gobgp")
ASN_MAX = 2**32 - 1


def parse_asn(text: str) -> int:
    """An AS number, plain (65010) or asdot (1.10); 0 and 65535 / 4294967295 are
    reserved (RFC 7300) and AS_TRANS 23456 (RFC 6793) is not a real AS."""
    try:
        if "." in text:
            hi, lo = text.split(".", 1)
            asn = int(hi) * 65536 + int(lo)
            if not (0 <= int(hi) <= 65535 and 0 <= int(lo) <= 65535):
                raise ValueError
        else:
            asn = int(text, 10)
    except ValueError:
        raise v.Bad(f"'{text}' is not an AS number") from None
    if not 1 <= asn <= ASN_MAX or asn in (23456, 65535, ASN_MAX):
        raise v.Bad(f"AS {text} is reserved or out of range (1-4294967294)")
    return asn


def _router_id(node: Node) -> str:
    import ipaddress  # only a bgp_speaker needs it: kept off every director -t

    text = v.one(node)
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise v.Bad(f"'{text}' is not a router id (an IPv4 dotted quad)") from None


def _ip(node: Node) -> tuple[str, int]:
    text = v.one(node) if node.args else ""
    try:
        return parse_ip(text)
    except SyntaxProblem as e:
        raise v.Bad(str(e)) from None


class BgpBuilder:
    """Mixed into the Builder: the two BGP keywords."""

    diags: Diagnostics

    def _bgp_fill(self, node: Node, spec: dict[str, Any], kw: dict[str, Any],
                  where: str) -> None:
        """Each line of a BGP block; a bad value is an error (see the module's doc)."""
        for child in v.block_lines(node):
            parse = spec.get(child.name)
            if parse is None:
                self.diags.error(child.pos, f"unknown keyword '{child.name}' in {where}")
                continue
            if (child.name == "neighbor") != (child.children is not None):
                self.diags.error(child.pos, f"'{child.name}' " + (
                    "needs a block { ... }" if child.name == "neighbor"
                    else "does not take a block"))
                continue
            if child.name != "neighbor" and child.name not in ("bfd", "passive") and \
                    len(child.args) > 1:
                self.diags.error(child.pos, f"{child.name} takes one value, not "
                                            f"'{' '.join(child.args)}'")
                continue
            try:
                parse(child, kw)
            except v.Bad as e:
                self.diags.error(child.pos, f"{where}: {child.name}: {e}")

    def bgp_speaker(self, node: Node) -> BgpSpeaker | None:
        if node.args:
            self.diags.warning(node.pos, f"bgp_speaker: '{' '.join(node.args)}' ignored")
        kw: dict[str, Any] = {"neighbors": []}

        def setter(field: str, parse: Any) -> Any:
            return lambda n, kw: kw.__setitem__(field, parse(n))

        def neighbor(n: Node, kw: dict[str, Any]) -> None:
            nb = self._bgp_neighbor(n)
            if nb is None:
                return
            for other in kw["neighbors"]:
                if other.address == nb.address:
                    self.diags.error(n.pos, f"bgp_speaker: neighbor {nb.address} is already "
                                            f"defined at {other.pos}")
                    return
            kw["neighbors"].append(nb)

        def engine(n: Node) -> str:
            name = v.one(n).lower()
            if name in FUTURE_ENGINES:
                raise v.Bad(f"engine {name} is not available yet (only "
                            f"{', '.join(ENGINES)})")
            if name not in ENGINES:
                raise v.Bad(f"unknown engine '{name}' ({', '.join(ENGINES)})")
            return name

        spec = {
            "router_id": setter("router_id", _router_id),
            "local_as": setter("local_as", lambda n: parse_asn(v.one(n))),
            "neighbor": neighbor,
            "engine": setter("engine", engine),
            "withdraw_grace": setter("withdraw_grace", v.number(0, 600)),
        }
        self._bgp_fill(node, spec, kw, "bgp_speaker")
        missing = [k for k in ("router_id", "local_as") if k not in kw]
        if missing:
            self.diags.error(node.pos, f"bgp_speaker has no {' and no '.join(missing)}")
            return None
        if not kw["neighbors"]:
            self.diags.error(node.pos, "bgp_speaker has no neighbor")
            return None
        kw["neighbors"] = tuple(kw["neighbors"])
        speaker = BgpSpeaker(pos=node.pos, **kw)
        for nb in speaker.neighbors:
            if nb.bfd and speaker.engine == "exabgp":
                self.diags.warning(nb.pos, f"neighbor {nb.address}: bfd is not offered by "
                                           f"engine exabgp; ignored (failure detection is "
                                           f"the hold time, {nb.hold_time} s)")
        return speaker

    def _bgp_neighbor(self, node: Node) -> BgpNeighbor | None:
        if len(node.args) != 1:
            self.diags.error(node.pos, "neighbor needs exactly one address")
            return None
        try:
            address, family = parse_ip(node.args[0])
        except SyntaxProblem as e:
            self.diags.error(node.pos, f"neighbor: {e}")
            return None
        kw: dict[str, Any] = {}

        def local_address(n: Node, kw: dict[str, Any]) -> None:
            addr, fam = _ip(n)
            if fam != family:
                raise v.Bad(f"{addr} is not of the neighbor's family (IPv{family})")
            kw["local_address"] = addr

        def hold_time(n: Node) -> int:
            t = v.to_int(v.one(n), 0, 65535)
            if t in (1, 2):  # RFC 4271 4.2: zero or at least three seconds
                raise v.Bad("must be 0 or at least 3 seconds")
            return t

        def setter(field: str, parse: Any) -> Any:
            return lambda n, kw: kw.__setitem__(field, parse(n))

        spec = {
            "remote_as": setter("remote_as", lambda n: parse_asn(v.one(n))),
            "hold_time": setter("hold_time", hold_time),
            "bfd": setter("bfd", v.flag),
            "local_address": local_address,
            "port": setter("port", lambda n: v.to_int(v.one(n), 1, 65535)),
            "passive": setter("passive", v.flag),
        }
        self._bgp_fill(node, spec, kw, f"neighbor {address}")
        if "remote_as" not in kw:
            self.diags.error(node.pos, f"neighbor {address} has no remote_as")
            return None
        return BgpNeighbor(address=address, family=family, pos=node.pos, **kw)

    def _bgp_announce(self, node: Node) -> BgpAnnounce:
        a = node.args
        if not a:
            return BgpAnnounce(pos=node.pos)
        if len(a) == 2 and a[0] == "dev":
            return BgpAnnounce(dev=a[1], pos=node.pos)
        raise v.Bad(f"expected 'bgp_announce [dev DEVICE]', got '{' '.join(a)}'")


def announce_addresses(vs: VirtualServer, cfg: Config) -> tuple[str, ...]:
    """The addresses a virtual server with bgp_announce announces: its own, or each
    address of its group (ranges expanded); a fwmark service has none."""
    if vs.address is not None:
        return (vs.address,)
    import ipaddress

    out: list[str] = []
    for g in cfg.virtual_server_groups:
        if g.name != vs.group:
            continue
        for e in g.entries:
            if e.address is None:
                continue
            first = ipaddress.ip_address(e.address)
            last = ipaddress.ip_address(e.last) if e.last else first
            n = int(last) - int(first)
            out.extend(str(first + i) for i in range(min(n, 255) + 1))
    return tuple(dict.fromkeys(out))


def validate_bgp(cfg: Config, diags: Diagnostics,
                 interfaces: set[str] | None) -> Config:
    """The cross-object rules: a bgp_announce needs a speaker and an address to announce;
    its device should exist."""
    servers = []
    changed = False
    families = {nb.family for nb in cfg.bgp_speaker.neighbors} if cfg.bgp_speaker else set()
    for vs in cfg.virtual_servers:
        ann = vs.bgp_announce
        if ann is not None:
            drop = None
            if cfg.bgp_speaker is None:
                drop = "there is no bgp_speaker block: nothing is announced"
            elif not announce_addresses(vs, cfg):
                drop = "a fwmark virtual server has no address to announce; ignored"
            if drop:
                diags.warning(ann.pos, f"virtual_server {vs.key}: bgp_announce: {drop}")
                vs = aot.evolve(vs, bgp_announce=None)
                changed = True
            elif vs.family not in families:
                diags.warning(ann.pos, f"virtual_server {vs.key}: bgp_announce: no IPv"
                                       f"{vs.family} neighbor in bgp_speaker: announced to "
                                       f"nobody (each neighbor carries its own family)")
            elif interfaces is not None and ann.dev not in interfaces:
                diags.warning(ann.pos, f"virtual_server {vs.key}: bgp_announce: interface "
                                       f"{ann.dev} doesn't exist (yet)")
        servers.append(vs)
    if cfg.bgp_speaker is not None and not any(vs.bgp_announce for vs in servers):
        diags.warning(cfg.bgp_speaker.pos, "bgp_speaker: no virtual_server has bgp_announce; "
                                           "the speaker runs with nothing to announce")
    return aot.evolve(cfg, virtual_servers=tuple(servers)) if changed else cfg
