"""Virtual IPs, routes, rules and VMAC interfaces through rtnetlink (pyroute2).

Every call logs what it was doing when the kernel refuses, and carries on: one bad
route must not keep the VIPs from moving. Adding what is there already and removing
what is gone are not errors (a restarted child adopts the kernel's state).
"""

from __future__ import annotations

import concurrent.futures
import errno
import logging
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from conf.model import VirtualIp, VirtualRoute, VirtualRule
from daemonlib.ipvs_syncd import SyncdCommand, run_commands

from . import rtnl
from .announce import Announcer, first_ipv4, link_local
from .plane import Op

T = TypeVar("T")

log = logging.getLogger("director.vrrp")

SCOPES = {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
TABLES = {"default": 253, "main": 254, "local": 255}
IFA_F_NODAD = 0x02
IFA_F_HOMEADDRESS = 0x10
IFA_F_NOPREFIXROUTE = 0x200


def _num(value: str | None, names: dict[str, int]) -> int | None:
    if value is None:
        return None
    return names[value] if value in names else int(value, 0)


def vmac_address(vrid: int, family: int) -> str:
    return f"00:00:5e:00:{2 if family == 6 else 1:02x}:{vrid:02x}"


def eui64_link_local(mac: str) -> str:
    """fe80::/64 with the modified EUI-64 interface id of `mac` (RFC 4291 appendix A)."""
    b = bytes.fromhex(mac.replace(":", ""))
    iid = bytes([b[0] ^ 0x02, b[1], b[2], 0xFF, 0xFE, b[3], b[4], b[5]])
    return socket.inet_ntop(socket.AF_INET6, b"\xfe\x80" + b"\0" * 6 + iid)


def _base_link_local(base: str) -> str:
    """The base interface's link-local address, else one made from its MAC."""
    found = link_local(base)
    if found:
        return found
    try:
        with open(f"/sys/class/net/{base}/address") as f:
            return eui64_link_local(f.read().strip())
    except (OSError, ValueError):
        return ""


def raw_vip(vip: VirtualIp) -> bool:
    """A VIP made by one raw request (vrrp/rtnl.py); a peer or a preferred_lft: pyroute2."""
    return not vip.peer and vip.preferred_lft is None


def _vip_flags(vip: VirtualIp) -> int:
    return ((IFA_F_NODAD if vip.nodad or vip.family == 6 else 0)
            | (IFA_F_HOMEADDRESS if vip.home else 0)
            | (IFA_F_NOPREFIXROUTE if vip.noprefixroute else 0))


class Addresses:
    """Synchronous rtnetlink calls. pyroute2's IPRoute runs its own event loop, so it
    lives in a worker thread (`Worker`) when called from the daemon's loop."""

    def __init__(self) -> None:
        self.ipr = IPRoute()
        self.rtnl = rtnl.Rtnl()

    def close(self) -> None:
        self.ipr.close()
        self.rtnl.close()

    def index(self, ifname: str) -> int | None:
        # one ioctl: a MASTER's VIPs wait for it (pyroute2's link_lookup took 1-2 ms)
        try:
            return socket.if_nametoindex(ifname)
        except (OSError, ValueError):
            return None

    def interface_of(self, address: str) -> str | None:
        """The interface that holds `address`, or None."""
        for msg in self.ipr.get_addr():
            if address in (msg.get_attr("IFA_ADDRESS"), msg.get_attr("IFA_LOCAL")):
                links = self.ipr.get_links(msg["index"])
                return links[0].get_attr("IFLA_IFNAME") if links else None
        return None

    def _call(self, what: str, fn: Callable[..., object], *args: object,
              ok: tuple[int, ...] = (), **kw: object) -> bool:
        try:
            fn(*args, **kw)
            return True
        except NetlinkError as e:
            if e.code in ok:
                return True
            log.error("%s: kernel refused: %s", what, errno.errorcode.get(e.code, e.code))
        except (OSError, ValueError, KeyError) as e:
            log.error("%s: %s", what, e)
        return False

    # -- addresses -------------------------------------------------------------------
    def has(self, vip: VirtualIp, ifname: str) -> bool:
        idx = self.index(vip.dev or ifname)
        if idx is None:
            return False
        af = socket.AF_INET6 if vip.family == 6 else socket.AF_INET
        return any(a.get_attr("IFA_ADDRESS") == vip.address
                   for a in self.ipr.get_addr(family=af, index=idx))

    def set_vip(self, op: str, vip: VirtualIp, ifname: str) -> bool:
        dev = vip.dev or ifname
        idx = self.index(dev)
        what = f"{'adding' if op == 'add' else 'removing'} {vip.address}/{vip.prefixlen} on {dev}"
        if idx is None:
            log.error("%s: no such interface", what)
            return False
        ok = (errno.EEXIST,) if op == "add" else (errno.EADDRNOTAVAIL, errno.ENOENT,
                                                  errno.ENODEV)
        if raw_vip(vip):
            try:
                code = self.rtnl.addr(rtnl.AddrRequest(
                    op="add" if op == "add" else "delete", family=vip.family, index=idx,
                    address=vip.address, prefixlen=vip.prefixlen,
                    broadcast=vip.broadcast if op == "add" else None,
                    label=vip.label if op == "add" else None,
                    scope=_num(vip.scope, SCOPES) if op == "add" else None,
                    flags=_vip_flags(vip) if op == "add" else 0))
            except (OSError, ValueError) as e:
                log.error("%s: %s", what, e)
                return False
            if code and code not in ok:
                log.error("%s: kernel refused: %s", what, errno.errorcode.get(code, code))
            return not code or code in ok
        kw: dict[str, object] = {"index": idx, "address": vip.address,
                                 "prefixlen": vip.prefixlen}
        if op == "add":
            if vip.broadcast and vip.family == 4:
                kw["broadcast"] = vip.broadcast
            if vip.label and vip.family == 4:
                kw["label"] = vip.label
            if vip.scope:
                kw["scope"] = _num(vip.scope, SCOPES)
            if vip.peer:
                kw["local"], kw["address"] = vip.address, vip.peer
            flags = _vip_flags(vip)
            if flags:
                kw["flags"] = flags
            if vip.preferred_lft is not None:
                kw["IFA_CACHEINFO"] = {"ifa_preferred": vip.preferred_lft,
                                       "ifa_valid": 0xFFFFFFFF}
        return self._call(what, self.ipr.addr, op, ok=ok, **kw)

    # -- routes and rules ------------------------------------------------------------
    def set_route(self, op: str, route: VirtualRoute, ifname: str) -> bool:
        kw: dict[str, object] = {"family": socket.AF_INET6 if route.family == 6
                                 else socket.AF_INET}
        if route.dst != "default":
            kw["dst"] = route.dst
        elif route.family == 6:
            kw["dst"] = "::/0"
        else:
            kw["dst"] = "0.0.0.0/0"
        if route.via:
            kw["gateway"] = route.via
        if route.nexthops:  # RTA_MULTIPATH; keepalived's weight N is hops N-1
            kw["multipath"] = [
                {k: val for k, val in (("gateway", h.via), ("hops", h.weight - 1),
                                       ("oif", self.index(h.dev) if h.dev else None))
                 if val is not None}
                for h in route.nexthops]
        if route.src:
            kw["prefsrc"] = route.src
        dev = route.dev or (None if route.via or route.blackhole or route.nexthops
                            else ifname)
        if dev:
            idx = self.index(dev)
            if idx is not None:
                kw["oif"] = idx
        if route.table:
            kw["table"] = _num(route.table, TABLES)
        if route.metric is not None:
            kw["priority"] = route.metric
        if route.scope:
            kw["scope"] = _num(route.scope, SCOPES)
        if route.proto:
            kw["proto"] = int(route.proto) if route.proto.isdigit() else route.proto
        if route.blackhole:
            kw["type"] = "blackhole"
        elif route.type:
            kw["type"] = route.type
        what = f"{'adding' if op == 'add' else 'removing'} route {route.dst}"
        return self._call(what, self.ipr.route, op, ok=(errno.EEXIST,) if op == "add"
                          else (errno.ESRCH, errno.ENOENT), **kw)

    def set_rule(self, op: str, rule: VirtualRule) -> bool:
        kw: dict[str, object] = {"family": socket.AF_INET6 if rule.family == 6
                                 else socket.AF_INET}
        for side, value in (("src", rule.src), ("dst", rule.dst)):
            if value and value != "all":
                addr, _, plen = value.partition("/")
                kw[side] = addr
                kw[f"{side}_len"] = int(plen) if plen else (128 if rule.family == 6 else 32)
        if rule.table:
            kw["table"] = _num(rule.table, TABLES)
        if rule.priority is not None:
            kw["priority"] = rule.priority
        if rule.fwmark:
            mark, _, mask = rule.fwmark.partition("/")
            kw["fwmark"] = int(mark, 0)
            if mask:
                kw["fwmask"] = int(mask, 0)
        if rule.iif:
            kw["iifname"] = rule.iif
        if rule.oif:
            kw["oifname"] = rule.oif
        what = f"{'adding' if op == 'add' else 'removing'} rule {rule.src or rule.dst or ''}"
        return self._call(what, self.ipr.rule, op, ok=(errno.EEXIST,) if op == "add"
                          else (errno.ENOENT,), **kw)

    # -- VMAC --------------------------------------------------------------------------
    def ensure_vmac(self, name: str, base: str, vrid: int, family: int,
                    link_local: str | None = None) -> bool:
        """A macvlan `name` on `base` with the VRRP virtual MAC, up. IPv4 instance: no
        IPv6 on it (its link-local traffic would show the shared MAC). IPv6 instance, as
        keepalived: no address generated from the shared MAC (RFC 5798 7.4: the adverts
        come from a link-local address of our own), but `link_local` (the configured
        source), else the base interface's link-local address, added to the VMAC."""
        mac = vmac_address(vrid, family)
        base_idx = self.index(base)
        if base_idx is None:
            log.error("VMAC %s: base interface %s not found", name, base)
            return False
        if self.index(name) is None:
            if not self._call(f"creating VMAC {name} on {base}", self.ipr.link, "add",
                              ifname=name, kind="macvlan", link=base_idx,
                              macvlan_mode="private", address=mac):
                return False
        _sysctl(f"net/ipv4/conf/{name}/arp_ignore", "1")
        if family == 4:
            # only the VMAC answers ARP for the VIP, and the base never announces the VIP
            # as the sender of its own ARP requests (that would teach hosts the base's MAC)
            for key, value in (("arp_ignore", "1"), ("arp_announce", "2"),
                               ("arp_filter", "1")):
                _sysctl(f"net/ipv4/conf/{base}/{key}", value)
            _sysctl(f"net/ipv6/conf/{name}/disable_ipv6", "1")
        else:
            _sysctl(f"net/ipv6/conf/{name}/disable_ipv6", "0")
            _sysctl(f"net/ipv6/conf/{name}/addr_gen_mode", "1")  # none; before it is up
        idx = self.index(name)
        if idx is None or not self._call(f"bringing VMAC {name} up", self.ipr.link, "set",
                                         index=idx, state="up"):
            return False
        if family == 6 and link_local != "":
            addr = link_local or _base_link_local(base)
            if not addr:
                log.error("VMAC %s: no link-local address for %s", name, base)
                return False
            return self._call(f"adding link-local address {addr} to VMAC {name}",
                              self.ipr.addr, "add", index=idx, address=addr, prefixlen=64,
                              flags=IFA_F_NODAD, ok=(errno.EEXIST,))
        return True

    def remove_link(self, name: str) -> None:
        idx = self.index(name)
        if idx is not None:
            self._call(f"removing {name}", self.ipr.link, "del", index=idx,
                       ok=(errno.ENODEV,))



def link_up(ifname: str) -> bool:
    """Administratively up and with carrier (keepalived: IFF_UP and IFF_RUNNING; sysfs
    `flags` lacks RUNNING, and `carrier` cannot be read while the link is down)."""
    try:
        with open(f"/sys/class/net/{ifname}/flags") as f:
            if not int(f.read(), 16) & 0x1:
                return False
        with open(f"/sys/class/net/{ifname}/carrier") as f:
            return f.read().strip() == "1"
    except (OSError, ValueError):
        return False


def _sysctl(path: str, value: str) -> None:
    try:
        with open(f"/proc/sys/{path}", "w") as f:
            f.write(value)
    except OSError as e:
        log.warning("sysctl %s=%s: %s", path.replace("/", "."), value, e.strerror)


def _nothing() -> None:
    pass


class Worker:
    """`Addresses` on one thread, as a `plane.VrrpPlane`: changes run in the order made,
    off the event loop; queries and VMAC calls block for their answer (start-up and
    stop only). A usual VIP (`raw_vip`) is made at once on the caller's thread when
    nothing is queued: one raw rtnetlink request, as keepalived's, where the queue's
    thread hop cost a new MASTER 0.1-5 ms (waking the thread, the GIL)."""

    def __init__(self) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rtnl")
        self.addrs: Addresses = self.pool.submit(Addresses).result()
        self._queued = 0  # submitted and not finished
        self._lock = threading.Lock()

    def _queue(self, fn: Callable[..., T], *args: object) -> concurrent.futures.Future[T]:
        with self._lock:
            self._queued += 1

        def job() -> T:
            try:
                return fn(*args)
            finally:
                with self._lock:
                    self._queued -= 1

        return self.pool.submit(job)

    def _idle(self) -> bool:
        with self._lock:
            return self._queued == 0

    def _wait(self, fn: Callable[..., T], *args: object) -> T:
        return self._queue(fn, *args).result()

    def has(self, vip: VirtualIp, dev: str) -> bool:
        return self._wait(self.addrs.has, vip, dev)

    def set_vip(self, op: Op, vip: VirtualIp, dev: str) -> None:
        if raw_vip(vip) and self._idle():  # only this thread queues: it stays idle
            self.addrs.set_vip(op, vip, dev)
        else:
            self._queue(self.addrs.set_vip, op, vip, dev)

    def set_route(self, op: Op, route: VirtualRoute, dev: str) -> None:
        self._queue(self.addrs.set_route, op, route, dev)

    def set_rule(self, op: Op, rule: VirtualRule) -> None:
        self._queue(self.addrs.set_rule, op, rule)

    def index(self, ifname: str) -> int | None:
        return self._wait(self.addrs.index, ifname)

    def ensure_vmac(self, name: str, base: str, vrid: int, family: int,
                    link_local: str | None = None) -> bool:
        return self._wait(self.addrs.ensure_vmac, name, base, vrid, family, link_local)

    def remove_link(self, name: str) -> None:
        self._wait(self.addrs.remove_link, name)

    def source_address(self, ifname: str, family: int) -> str | None:
        return link_local(ifname) if family == 6 else first_ipv4(ifname)

    def interface_of(self, address: str) -> str | None:
        return self._wait(self.addrs.interface_of, address)

    def announcer(self, ifname: str) -> Announcer:
        return Announcer(ifname)

    def sync_daemon(self, cmds: list[SyncdCommand]) -> None:
        """IPVS sync daemon commands, in order with the address changes (a new MASTER's
        daemon starts after its VIPs are in place, as keepalived)."""
        if cmds:
            self._queue(run_commands, cmds)

    def submit(self, fn: Callable[[Addresses], object]) -> concurrent.futures.Future[object]:
        """`fn(addresses)` on the worker's thread, in order with the calls (the
        firewall's sets change in step with the addresses)."""
        return self._queue(fn, self.addrs)

    def flush(self, timeout: float) -> bool:
        """Wait for the changes queued so far, blocking the loop: the worker then has the
        GIL at once rather than after the loop's next switch interval (5 ms)."""
        if self._idle():
            return True
        try:
            self._queue(_nothing).result(timeout)
        except concurrent.futures.TimeoutError:
            return False
        return True

    def close(self) -> None:
        self._wait(self.addrs.close)
        self.pool.shutdown()
