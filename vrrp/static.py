"""static_ipaddress, static_routes, static_rules: the VRRP daemon's own addresses, routes
and rules, held whatever the instances' states (keepalived's vrrp_daemon behaviour).

keepalived removes leftovers and installs them at start, at a reload removes those the
new config dropped and installs the new list (adding what is there is a no-op), and
removes them all at stop (also with --dont-release-vrrp). A static address without
`dev` goes on the default interface (`default_interface`, else eth0). A restarted child
(after a crash) keeps what is in place and adds what is missing.

`ops` is the pure decision; `apply` runs it on the rtnetlink worker's `Addresses`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

import attrs

from conf.errors import NOWHERE
from conf.model import Config, VirtualIp, VirtualRoute, VirtualRule

if TYPE_CHECKING:
    from .addresses import Addresses

log = logging.getLogger("director.vrrp")

Item = VirtualIp | VirtualRoute | VirtualRule
Op = tuple[Literal["add", "delete"], Item]


def _key(x: Item) -> Item:
    return attrs.evolve(x, pos=NOWHERE)  # the same entry wherever it is written


def entries(cfg: Config) -> list[Item]:
    """In install order: addresses (each with its device), routes, rules."""
    dev = cfg.global_defs.default_interface or "eth0"
    vips = [v if v.dev else attrs.evolve(v, dev=dev) for v in cfg.static_ipaddress]
    return [*vips, *cfg.static_routes, *cfg.static_rules]


def ops(new: Config | None, old: Config | None = None, *,
        fresh: bool = False) -> list[Op]:
    """What to do: at start (`old` None; `fresh` clears leftovers first, as keepalived),
    at a reload (`old` the previous config) or at stop (`new` None)."""
    want = entries(new) if new is not None else []
    before = entries(old) if old is not None else (want if fresh else [])
    keep = {_key(x) for x in want}
    gone = [x for x in before if _key(x) not in keep] if new is not None and old is not None \
        else before
    out: list[Op] = [("delete", x) for x in reversed(gone)]  # rules, routes, addresses
    out += [("add", x) for x in want]
    return out


def apply(a: Addresses, todo: list[Op]) -> None:
    for op, item in todo:
        if isinstance(item, VirtualIp):
            a.set_vip(op, item, item.dev or "")
        elif isinstance(item, VirtualRoute):
            a.set_route(op, item, "")
        else:
            a.set_rule(op, item)
