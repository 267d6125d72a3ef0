"""One VRRP instance at run time: the pure state machine wired to sockets, addresses,
announcements, trackers and notifications.

Everything the state machine decides arrives as `fsm.Action`s; this module turns them
into packets, netlink calls and scripts, and keeps keepalived's log wording and counters.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import TYPE_CHECKING, Protocol

from conf.model import GlobalDefs, Notify, VrrpInstance
from daemonlib.fifo import Fifo
from daemonlib.notify_order import InOrder
from daemonlib.smtp import Mailer

from . import ah, firewall, fsm, garp
from .packet import AUTH_AH, AUTH_NONE, AUTH_PASS, Advert, encode
from .plane import AdvertRx, AdvertTx, Announce, VrrpPlane
from .receive import COUNTERS, Policy, Received, check
from .syncd import SyncdFollower
from .trackers import Tracker

if TYPE_CHECKING:
    from .addresses import Addresses

log = logging.getLogger("director.vrrp")
FLUSH_TIMEOUT = 1.0  # the longest a new MASTER's loop waits for its VIPs to be set


class GroupLink(Protocol):
    """What a router tells its sync group (vrrp/daemon.py: SyncGroup)."""

    def entered(self, router: Router, state: str) -> None: ...
    def fault_changed(self, router: Router) -> None: ...
    def wants_master(self, router: Router) -> None: ...


class Router:
    def __init__(self, cfg: VrrpInstance, g: GlobalDefs, addrs: VrrpPlane,
                 fifos: list[Fifo]) -> None:
        self.cfg = cfg
        self.g = g
        self.addrs = addrs
        self.fifos = fifos
        self.name = cfg.name
        self.family = cfg.family
        self.vrid = cfg.virtual_router_id or 0
        self.ifname = cfg.interface or ""
        if not self.ifname and cfg.unicast_src_ip:
            self.ifname = addrs.interface_of(cfg.unicast_src_ip) or ""
            if not self.ifname:
                log.error("(%s) no interface holds unicast_src_ip %s", cfg.name,
                          cfg.unicast_src_ip)
        self.vmac = None
        if cfg.use_vmac is not None:
            self.vmac = cfg.use_vmac or f"vrrp.{self.vrid}"
        self.dev = self.vmac or self.ifname  # where the VIPs go and GARPs leave from
        self.key = (self.ifname, self.family, self.vrid)  # how instances are matched
        self.counters: collections.Counter[str] = collections.Counter()
        self.fsm = fsm.Instance(
            name=cfg.name, version=cfg.version, priority=cfg.priority,
            advert_int=cfg.advert_int, primary_ip="0.0.0.0" if self.family == 4 else "::",
            nopreempt=cfg.nopreempt, preempt_delay=cfg.preempt_delay,
            want_master=cfg.state == "MASTER", lower_prio_no_advert=cfg.lower_prio_no_advert,
            higher_prio_send_advert=cfg.higher_prio_send_advert)
        self.vips = list(cfg.virtual_ipaddress)
        self.all_vips = (*self.vips, *cfg.virtual_ipaddress_excluded)
        self.interval_cs = round(cfg.advert_int * 100)
        self.adv_addrs = tuple(v.address for v in self.vips if v.family == self.family)
        auth = cfg.authentication if cfg.version == 2 else None
        self.auth_type = AUTH_NONE
        self.auth_pass = b""
        if auth is not None:
            self.auth_type = AUTH_PASS if auth.auth_type == "PASS" else AUTH_AH
            self.auth_pass = auth.auth_pass.encode()[:8]
        self.ah = ah.SeqCounter() if self.auth_type == AUTH_AH else None
        self.policy = Policy(
            version=cfg.version, vrid=self.vrid, interval_cs=self.interval_cs,
            auth_type=self.auth_type, auth_pass=self.auth_pass,
            addrs=frozenset(self.adv_addrs),
            peers={p.address: (p.min_ttl, p.max_ttl) for p in cfg.unicast_peer},
            strict=cfg.strict_mode, skip_check_adv_addr=cfg.skip_check_adv_addr,
            check_unicast_src=cfg.check_unicast_src)
        self.rx_sock: AdvertRx | None = None
        self.tx_sock: AdvertTx | None = None
        self.src = ""
        self.dsts: list[str] = []
        self.announcer: Announce | None = None
        self.trackers: list[tuple[Tracker, int, bool]] = []
        self.base_priority = cfg.priority
        self.own_fault = False
        self.group_fault = False
        self.group: GroupLink | None = None  # the sync group, if a member
        self.mailer: Mailer | None = None  # set when this instance has smtp_alert
        self._rx_ah_seq: int | None = None
        self.master_ip = ""
        self.held_by = ""  # who asked for the handover (director ctl)
        self._shown = fsm.INIT  # the state last entered, as logged and notified
        self.last_transition = 0.0  # wall clock, for the dumps
        self._timer: asyncio.TimerHandle | None = None
        self._garp: list[asyncio.Task[None]] = []
        self._notifies = InOrder()  # this instance's notify scripts
        self.loop: asyncio.AbstractEventLoop | None = None
        self.firewall: firewall.Firewall | None = None  # the daemon's VIP drop rules
        self.syncd: SyncdFollower | None = None  # lvs_sync_daemon names this instance

    # -- set-up ------------------------------------------------------------------
    def attach(self, rx: AdvertRx, tx: AdvertTx) -> None:
        cfg = self.cfg
        self.rx_sock, self.tx_sock = rx, tx
        src = cfg.unicast_src_ip if cfg.unicast_peer else cfg.mcast_src_ip
        if not src:
            src = self.addrs.source_address(self.ifname, self.family)
        self.src = src or ""
        self.fsm.primary_ip = self.src or self.fsm.primary_ip
        if cfg.unicast_peer:
            self.dsts = [p.address for p in cfg.unicast_peer]
        else:
            group = self.g.vrrp_mcast_group6 if self.family == 6 else self.g.vrrp_mcast_group4
            self.dsts = [group]
            rx.join(group)
        self.announcer = self.addrs.announcer(self.dev)

    def track(self, tracker: Tracker, weight: int, reverse: bool) -> None:
        self.trackers.append((tracker, weight, reverse))
        tracker.listeners.append(self.trackers_changed)

    def _tracked(self) -> tuple[int, bool, list[str]]:
        delta, faults = 0, []
        for tracker, weight, reverse in self.trackers:
            d, fault = tracker.contribution(weight, reverse)
            delta += d
            if fault:
                faults.append(f"{tracker.kind} {tracker.name}")
        return delta, bool(faults), faults

    # -- life cycle -----------------------------------------------------------------
    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        if self.syncd is not None:
            self.addrs.sync_daemon(self.syncd.start())
        if not self.src:
            log.error("(%s) interface %s has no %s address to advertise from", self.name,
                      self.ifname, "IPv6 link-local" if self.family == 6 else "IPv4")
        delta, fault, why = self._tracked()
        self.fsm.priority = fsm.effective_priority(self.base_priority, delta)
        self.own_fault = fault or not self.src
        if self.own_fault:
            self.fsm.state = fsm.FAULT
            log.info("(%s) Entering FAULT STATE (%s)", self.name,
                     ", ".join(why) or "no source address")
            self._notify(fsm.FAULT)
            return
        self._remove_addresses(startup=True)
        self._do(self.fsm.start(self._now()))

    def holds_vips(self) -> bool:
        return bool(self.vips) and all(self.addrs.has(v, self.dev) for v in self.vips)

    def resume_master(self, why: str) -> None:
        """MASTER without a transition: addresses kept (re-adding is a no-op), an advert
        at once, GARPs again; no notify (nothing changed for the outside)."""
        self.loop = asyncio.get_running_loop()
        delta, fault, _why = self._tracked()
        self.fsm.priority = fsm.effective_priority(self.base_priority, delta)
        if fault or not self.src:
            self.start()
            return
        log.info("(%s) Resuming MASTER STATE (%s)", self.name, why)
        self._shown = fsm.MASTER
        self._add_addresses()
        self._start_garp()
        if self.syncd is not None:
            self.addrs.sync_daemon(self.syncd.resume_master())
        self._do(self.fsm.resume(self._now()))

    def detach(self) -> None:
        """Stop without a word to the network or the addresses (a reload takes over)."""
        if self._timer:
            self._timer.cancel()
            self._timer = None
        self._stop_garp()
        self.fsm.deadline = None

    def stop(self, keep_addresses: bool = False) -> None:
        if self.syncd is not None:  # first, as keepalived: before the priority-0 advert
            self.addrs.sync_daemon(self.syncd.stop())
        self._do(self.fsm.stop(self._now()), keep_addresses=keep_addresses)
        if self.announcer:
            self.announcer.close()

    def _now(self) -> float:
        assert self.loop is not None
        return self.loop.time()

    # -- events ------------------------------------------------------------------------
    def receive(self, rx: Received) -> None:
        verdict = check(self.policy, rx, self.ah.seq if self.ah else 0)
        self.counters.update(verdict.counters)
        if self.ah is not None and verdict.ah_seq is not None:
            self.ah.accept(verdict.ah_seq)
        if verdict.advert is None:
            log.debug("(%s) dropped advert from %s: %s", self.name, rx.src, verdict.message)
            return
        if verdict.message:
            log.info("(%s) %s (from %s)", self.name, verdict.message, rx.src)
        adv = verdict.advert
        if self.fsm.state in (fsm.FAULT, fsm.INIT):
            return
        if self.fsm.state == fsm.BACKUP and adv.priority:
            self.master_ip = rx.src
        self._rx_ah_seq = verdict.ah_seq  # for an answer to a lower priority (LowerAdvert)
        self._do(self.fsm.advert(self._now(), adv.priority, rx.src, adv.interval_cs / 100))

    def trackers_changed(self) -> None:
        if self.loop is None or self.fsm.state == fsm.INIT:
            return
        delta, fault, why = self._tracked()
        now = self._now()
        self._do(self.fsm.set_priority(now, fsm.effective_priority(self.base_priority, delta)))
        if fault != self.own_fault:
            self.own_fault = fault
            if fault:
                log.info("(%s) fault: %s", self.name, ", ".join(why))
            if self.group is None or not fault:
                self.set_fault()
            if self.group is not None:
                self.group.fault_changed(self)

    def set_fault(self) -> None:
        self._do(self.fsm.fault(self._now(), self.own_fault or self.group_fault))

    def force(self, state: str, reason: str) -> None:
        self._do(self.fsm.force(self._now(), state, reason))

    def handover(self, who: str) -> None:
        self.held_by = who
        self._do(self.fsm.handover(self._now()))

    def release(self, takeover: bool) -> None:
        self.held_by = ""
        self._do(self.fsm.release(self._now(), takeover))

    def _tick(self) -> None:
        self._timer = None
        if self.fsm.state == fsm.BACKUP and self.fsm.deadline is not None \
                and self._now() >= self.fsm.deadline:
            log.info("(%s) Receive advertisement timeout", self.name)
        self._do(self.fsm.tick(self._now()))

    # -- actions -------------------------------------------------------------------------
    def _do(self, actions: list[fsm.Action], keep_addresses: bool = False) -> None:
        for a in actions:
            match a:
                case fsm.Send(priority=priority):
                    self._send(priority)
                case fsm.Enter(to=to, reason=reason):
                    self._enter(to, reason, keep_addresses)
                case fsm.Notice(message=message):
                    log.info("(%s) %s", self.name, message)
                case fsm.WantMaster():
                    if self.group is not None:
                        self.group.wants_master(self)
                case fsm.LowerAdvert():
                    # keepalived syncs its AH sequence number from the lower master's;
                    # notify_master_rx_lower_pri, garp_lower_prio_*: not yet
                    if self.ah is not None and self._rx_ah_seq is not None:
                        self.ah.lower_priority_seen(self._rx_ah_seq)
        self._arm()

    def _arm(self) -> None:
        if self._timer:
            self._timer.cancel()
            self._timer = None
        if self.fsm.deadline is not None and self.loop is not None:
            self._timer = self.loop.call_at(self.fsm.deadline, self._tick)

    def _send(self, priority: int) -> None:
        if self.tx_sock is None or not self.src:
            return
        adv = Advert(version=self.cfg.version, vrid=self.vrid, priority=priority,
                     addrs=self.adv_addrs, interval_cs=self.interval_cs,
                     auth_type=self.auth_type,
                     auth_data=self.auth_pass if self.auth_type == AUTH_PASS else b"")
        ttl = 255 if not self.cfg.unicast_peer else self.cfg.unicast_ttl
        if self.ah is not None:  # one sequence number and IP id per advert, as keepalived
            seq, ip_id = self.ah.next_send(), self.ah.next_ip_id()
        for dst in self.dsts:
            try:
                payload = encode(adv, self.family, self.src, dst)
                if self.ah is not None:
                    self.tx_sock.send_packet(ah.build(
                        payload, self.src, dst, ttl, ip_id, seq, ah.key_of(self.auth_pass),
                        bool(self.cfg.unicast_peer)), dst)
                else:
                    self.tx_sock.send(payload, self.src, dst, ttl)
            except OSError as e:
                log.warning("(%s) sending advert to %s failed: %s", self.name, dst,
                            e.strerror or e)
                continue
            self.counters["advert_sent"] += 1
            if priority == 0:
                self.counters["pri_zero_sent"] += 1
        if priority == 0:
            log.info("(%s) sent 0 priority", self.name)

    def _enter(self, state: str, reason: str, keep_addresses: bool = False) -> None:
        prev = self._shown
        self._shown = state
        self.last_transition = time.time()
        if state == fsm.MASTER:
            log.info("(%s) Entering MASTER STATE", self.name)
        elif state == fsm.BACKUP:
            log.info("(%s) Entering BACKUP STATE (%s)", self.name, reason)
        elif state == fsm.FAULT:
            log.info("(%s) Entering FAULT STATE", self.name)
        if state == fsm.MASTER:
            if self.ah is not None:
                self.ah.becoming_master()
            self.counters["become_master"] += 1
            self._add_addresses()
            self._start_garp()
        elif prev == fsm.MASTER:
            self.counters["release_master"] += 1
            self._stop_garp()
            if not keep_addresses:
                self._remove_addresses()
        self._notify("STOP" if state == fsm.INIT else state)
        if self.syncd is not None:
            self.addrs.sync_daemon(self.syncd.entered(prev, state))
        if self.group is not None:
            self.group.entered(self, state)

    # -- addresses and announcements ---------------------------------------------------------
    def _add_addresses(self) -> None:
        log.info("(%s) setting VIPs.", self.name)
        self._firewall(True)  # keepalived blocks before the addresses appear
        for vip in self.all_vips:
            self.addrs.set_vip("add", vip, self.dev)
        for route in self.cfg.virtual_routes:
            self.addrs.set_route("add", route, self.dev)
        for rule in self.cfg.virtual_rules:
            self.addrs.set_rule("add", rule)
        # made before the GARPs, notifies and logs that follow, as keepalived's
        # synchronous netlink calls: queued, they would wait for the loop to yield (the
        # usual VIPs with nothing queued ahead are made at once: nothing to wait for)
        if not self.addrs.flush(FLUSH_TIMEOUT):
            log.warning("(%s) VIPs not set within %g s; carrying on", self.name,
                        FLUSH_TIMEOUT)

    def _remove_addresses(self, startup: bool = False) -> None:
        vips = self.all_vips
        if startup:  # keepalived removes leftovers of a previous run at start
            vips = tuple(v for v in vips if self.addrs.has(v, self.dev))
            if not vips:
                return
        else:
            log.info("(%s) removing VIPs.", self.name)
        for rule in self.cfg.virtual_rules:
            self.addrs.set_rule("delete", rule)
        for route in self.cfg.virtual_routes:
            self.addrs.set_route("delete", route, self.dev)
        for vip in vips:
            self.addrs.set_vip("delete", vip, self.dev)
        self._firewall(False)

    def _firewall(self, master: bool) -> None:
        """The VIPs of a MASTER without accept mode in the drop sets; else none."""
        fw = self.firewall
        if fw is None or fw.plan is None:  # no table: nothing to queue before the VIPs
            return
        vips = self.all_vips if master and firewall.drops(self.cfg) else ()
        name, dev = self.name, self.dev
        names = fw.plan is not None and firewall.by_name(self.cfg, fw.plan.ifindex)

        def update(a: Addresses) -> None:
            fw.set(name, firewall.elements(vips, lambda v: a.index(v.dev or dev),
                                           (lambda v: v.dev or dev) if names else None))
        self.addrs.submit(update)

    def _start_garp(self) -> None:
        self._stop_garp()
        self._garp.append(asyncio.ensure_future(self._garp_rounds()))

    def _stop_garp(self) -> None:
        for t in self._garp:
            t.cancel()
        self._garp.clear()

    async def _garp_round(self, repeat: int) -> None:
        assert self.announcer is not None
        vips = [v for v in self.all_vips if not v.dev or v.dev == self.ifname]
        dev = self.announcer.ifname
        for vip in vips:
            kind = "NA" if vip.family == 6 else "ARP"
            log.info("(%s) Sending/queueing gratuitous %ss on %s for %s", self.name, kind, dev,
                     vip.address)
        for _ in range(max(1, repeat)):
            for vip in vips:
                log.info("Sending %s on %s for %s", "unsolicited NA" if vip.family == 6
                         else "gratuitous ARP", dev, vip.address)
                self.announcer.send(vip.address, vip.family)
                gap = self.cfg.gna_interval if vip.family == 6 else self.cfg.garp_interval
                if gap:
                    await asyncio.sleep(gap)

    async def _garp_rounds(self) -> None:
        """The rounds at the times garp.next_round gives, counted from now (the
        transition), whatever each round took."""
        cfg = self.cfg
        timing = garp.Timing(delay=cfg.garp_master_delay, repeat=cfg.garp_master_repeat,
                             refresh=cfg.garp_master_refresh,
                             refresh_repeat=cfg.garp_master_refresh_repeat)
        loop = asyncio.get_running_loop()
        since = loop.time()
        rnd = garp.next_round(timing, since, None, since)
        while rnd is not None:
            if rnd.at > loop.time():
                await asyncio.sleep(rnd.at - loop.time())
            await self._garp_round(rnd.repeat)
            rnd = garp.next_round(timing, since, rnd, loop.time())

    # -- notifications -------------------------------------------------------------------
    def _notify(self, state: str) -> None:
        prio = self.fsm.priority
        for fifo in self.fifos:
            fifo.write(f'INSTANCE "{self.name}" {state} {prio}')
        if self.mailer is not None:
            self.mailer.instance_state(self.name, state)
        self.run_notify(self.cfg.notify, state, ("INSTANCE", self.name, state, str(prio)))

    def run_notify(self, n: Notify, state: str, args: tuple[str, ...]) -> None:
        """`notify_<state>` with its own arguments and `notify` with `args` (keepalived's
        INSTANCE|GROUP name state [priority]), in the order of the transitions."""
        specific = {"MASTER": n.notify_master, "BACKUP": n.notify_backup,
                    "FAULT": n.notify_fault, "STOP": n.notify_stop}.get(state)
        self._notifies.run(None, [(specific, (), f"notify_{state.lower()}"),
                                  (n.notify, args, "notify")])

    async def drain(self, timeout: float = 5.0) -> None:
        """Let notify scripts started by the last transitions finish (at stop)."""
        await self._notifies.drain(timeout)

    def status(self) -> dict[str, object]:
        return {"name": self.name, "state": self.fsm.state, "vrid": self.vrid,
                "interface": self.ifname, "family": self.family,
                "priority": self.fsm.priority, "base_priority": self.base_priority,
                "master_ip": self.src if self.fsm.state == fsm.MASTER else self.master_ip,
                "vips": [f"{v.address}/{v.prefixlen}" for v in self.vips],
                "override": {"handover": self.held_by} if self.fsm.held else None,
                "stats": self.stats()}

    def stats(self) -> dict[str, int]:
        """Every keepalived counter of the instance, zeros included."""
        return {k: self.counters.get(k, 0) for k in COUNTERS}
