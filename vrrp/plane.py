"""What a VRRP instance does to the host, as one typed interface: addresses, routes and
rules, VMAC links, source addresses, GARP / NA announcements and advert sockets.

`addresses.Worker` (rtnetlink on a thread) with `announce.Announcer` and
`transport.VrrpSocket` are the real ones; `RecordingPlane` keeps every call in order
so that a Router and a SyncGroup are unit-tested without root (the VRRP side's
counterpart of the LVS side's DryRunPlane).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any, Literal, Protocol

import attrs

from conf.model import VirtualIp, VirtualRoute, VirtualRule
from daemonlib.ipvs_syncd import SyncdCommand

Op = Literal["add", "delete"]


class Announce(Protocol):
    """GARPs / unsolicited NAs on one interface."""

    ifname: str

    def send(self, vip: str, family: int) -> None: ...
    def close(self) -> None: ...


class AdvertTx(Protocol):
    """Where an instance's adverts leave (transport.VrrpSocket)."""

    def send(self, payload: bytes, src: str, dst: str, ttl: int) -> None: ...
    def send_packet(self, packet: bytes, dst: str) -> None: ...  # with its IP header (AH)


class AdvertRx(Protocol):
    def join(self, group: str) -> None: ...


class VrrpPlane(Protocol):
    """Changes are queued in the order made (never block the loop); queries and the
    VMAC calls answer at once (start-up and stop only)."""

    def has(self, vip: VirtualIp, dev: str) -> bool: ...
    def set_vip(self, op: Op, vip: VirtualIp, dev: str) -> None: ...
    def set_route(self, op: Op, route: VirtualRoute, dev: str) -> None: ...
    def set_rule(self, op: Op, rule: VirtualRule) -> None: ...
    def index(self, ifname: str) -> int | None: ...
    def ensure_vmac(self, name: str, base: str, vrid: int, family: int,
                    link_local: str | None = None) -> bool: ...
    def remove_link(self, name: str) -> None: ...
    def source_address(self, ifname: str, family: int) -> str | None: ...
    def interface_of(self, address: str) -> str | None: ...
    def announcer(self, ifname: str) -> Announce: ...
    def sync_daemon(self, cmds: list[SyncdCommand]) -> None: ...  # IPVS sync daemons
    # anything else that must run in order with the changes (the firewall's sets, static
    # addresses): fn gets the synchronous rtnetlink side (addresses.Addresses)
    def submit(self, fn: Callable[[Any], object]) -> concurrent.futures.Future[object]: ...
    # block until the changes queued so far are made, at most `timeout` s (False: not yet)
    def flush(self, timeout: float) -> bool: ...
    def close(self) -> None: ...


@attrs.frozen
class Call:
    """One recorded call: `what` is the method, `args` what it was given."""

    what: str
    args: tuple[object, ...]


@attrs.define
class RecordingAnnouncer:
    ifname: str
    calls: list[Call]

    def send(self, vip: str, family: int) -> None:
        self.calls.append(Call("announce", (self.ifname, vip, family)))

    def close(self) -> None:
        pass


@attrs.define
class RecordingSocket:
    """An advert socket that keeps what was sent: (src, dst, ttl, payload)."""

    sent: list[tuple[str, str, int, bytes]] = attrs.Factory(list)
    groups: list[str] = attrs.Factory(list)

    def send(self, payload: bytes, src: str, dst: str, ttl: int) -> None:
        self.sent.append((src, dst, ttl, payload))

    def send_packet(self, packet: bytes, dst: str) -> None:
        self.sent.append(("", dst, 0, packet))

    def join(self, group: str) -> None:
        self.groups.append(group)


@attrs.define
class RecordingPlane:
    """Addresses held in memory, every call recorded in order."""

    sources: dict[tuple[str, int], str] = attrs.Factory(dict)  # (ifname, family) -> addr
    links: set[str] = attrs.Factory(set)
    held: set[tuple[str, int, str]] = attrs.Factory(set)  # (address, prefixlen, dev)
    calls: list[Call] = attrs.Factory(list)

    def _rec(self, what: str, *args: object) -> None:
        self.calls.append(Call(what, args))

    def has(self, vip: VirtualIp, dev: str) -> bool:
        return (vip.address, vip.prefixlen, vip.dev or dev) in self.held

    def set_vip(self, op: Op, vip: VirtualIp, dev: str) -> None:
        self._rec("set_vip", op, vip.address, vip.dev or dev)
        key = (vip.address, vip.prefixlen, vip.dev or dev)
        if op == "add":
            self.held.add(key)
        else:
            self.held.discard(key)

    def set_route(self, op: Op, route: VirtualRoute, dev: str) -> None:
        self._rec("set_route", op, route.dst, route.dev or dev)

    def set_rule(self, op: Op, rule: VirtualRule) -> None:
        self._rec("set_rule", op, rule.src or rule.dst)

    def index(self, ifname: str) -> int | None:
        return 1 if ifname in self.links else None

    def ensure_vmac(self, name: str, base: str, vrid: int, family: int,
                    link_local: str | None = None) -> bool:
        self._rec("ensure_vmac", name, base, vrid, family)
        self.links.add(name)
        return True

    def remove_link(self, name: str) -> None:
        self._rec("remove_link", name)
        self.links.discard(name)

    def source_address(self, ifname: str, family: int) -> str | None:
        return self.sources.get((ifname, family))

    def interface_of(self, address: str) -> str | None:
        return next((i for (i, _), a in self.sources.items() if a == address), None)

    def announcer(self, ifname: str) -> RecordingAnnouncer:
        return RecordingAnnouncer(ifname, self.calls)

    def sync_daemon(self, cmds: list[SyncdCommand]) -> None:
        for cmd in cmds:
            self._rec("sync_daemon", cmd.op, cmd.role, cmd.cleanup)

    def submit(self, fn: Callable[[Any], object]) -> concurrent.futures.Future[object]:
        """Runs `fn` at once with this plane standing for the rtnetlink side."""
        self._rec("submit", getattr(fn, "__name__", "fn"))
        done: concurrent.futures.Future[object] = concurrent.futures.Future()
        done.set_result(fn(self))
        return done

    def flush(self, timeout: float) -> bool:
        self._rec("flush")
        return True

    def close(self) -> None:
        self._rec("close")

    def of(self, what: str) -> list[tuple[object, ...]]:
        """The arguments of every call to `what`, in order."""
        return [c.args for c in self.calls if c.what == what]
