"""static_ipaddress, static_routes, static_rules: the VRRP daemon's own addresses, routes
and rules, held whatever the instances' states (keepalived's vrrp_daemon behaviour).

keepalived removes leftovers and installs them at start, at a reload removes those the
new config dropped and installs the new list (adding what is there is a no-op), and
removes them all at stop (also with --dont-release-vrrp). A static address without
`dev` goes on the default interface (`default_interface`, else eth0). A restarted child
(after a crash) keeps what is in place and adds what is missing.

An entry deleted from outside is put back (keepalived's netlink monitor does so too),
unless it is marked `no_track`.

`ops` is the pure decision; `apply` runs it on the rtnetlink worker's `Addresses`;
`Watch` hears rtnetlink's address, route and rule events and re-applies the tracked ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import attrs

from conf.errors import NOWHERE
from conf.model import Config, VirtualIp, VirtualRoute, VirtualRule

if TYPE_CHECKING:
    from .addresses import Addresses, Worker

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


def reinstate(a: Addresses, cfg: Config) -> None:
    """Add back what is missing (adding what is there is a no-op for the kernel)."""
    for x in entries(cfg):
        if x.no_track:
            continue
        if isinstance(x, VirtualIp):
            if not a.has(x, x.dev or ""):
                log.info("Restoring deleted static address %s/%d on %s", x.address,
                         x.prefixlen, x.dev)
                a.set_vip("add", x, x.dev or "")
        else:
            apply(a, [("add", x)])


# rtnetlink multicast groups: IPv4/IPv6 addresses, routes, IPv4 rules; IPv6 rules by id
GROUPS = 0x10 | 0x40 | 0x80 | 0x100 | 0x400
RTNLGRP_IPV6_RULE = 19
SOL_NETLINK, NETLINK_ADD_MEMBERSHIP = 270, 1


class Watch:
    """Re-applies the tracked static entries after address/route/rule events, at most
    one pass queued at a time."""

    def __init__(self, cfg: Config, worker: Worker) -> None:
        self.cfg = cfg
        self.worker = worker
        self._sock: socket.socket | None = None
        self._queued = False

    def start(self) -> None:
        if not any(not x.no_track for x in entries(self.cfg)):
            return
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
        s.bind((0, GROUPS))
        with contextlib.suppress(OSError):
            s.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, RTNLGRP_IPV6_RULE)
        s.setblocking(False)
        self._sock = s
        asyncio.get_running_loop().add_reader(s.fileno(), self._event)

    def _event(self) -> None:
        assert self._sock is not None
        with contextlib.suppress(BlockingIOError):
            while self._sock.recv(65536):
                pass
        if not self._queued:
            self._queued = True
            cfg = self.cfg
            self.worker.submit(self._pass(cfg))

    def _pass(self, cfg: Config) -> Callable[[Addresses], None]:
        def run(a: Addresses) -> None:
            self._queued = False  # events from here on queue another pass
            reinstate(a, cfg)
        return run

    def stop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
