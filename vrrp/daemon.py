"""The VRRP side (`director -P`): sockets, instances, sync groups and trackers in one
asyncio loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from conf.model import Config, VrrpInstance, VrrpSyncGroup
from daemonlib.fifo import Fifo
from daemonlib.ipvs_syncd import SyncdParams
from daemonlib.scripts import enforce
from daemonlib.smtp import Mailer, MailSettings, vrrp_enabled

from . import firewall, fsm, static
from .addresses import Worker, link_up
from .ah import IPPROTO_AH
from .packet import VRRP_PROTO
from .plane import VrrpPlane
from .receive import Received
from .router import Router
from .syncd import SyncdFollower
from .syncgroup import Command, Force, GroupEntered, GroupFault, Member, SyncCore, member_weight
from .trackers import FileTracker, ProcessTracker, ScriptTracker, Tracker, Trackers
from .transport import VrrpSocket

log = logging.getLogger("director.vrrp")


class SyncGroup:
    """The routers of one sync group, moved by the pure core in vrrp/syncgroup.py."""

    def __init__(self, cfg: VrrpSyncGroup, members: list[Router], fifos: list[Fifo]) -> None:
        self.cfg = cfg
        self.members = members
        self.by_name = {m.name: m for m in members}
        self.fifos = fifos
        self.core = SyncCore(cfg.name, tuple(m.name for m in members))
        self.mailer: Mailer | None = None  # set when the group has smtp_alert
        self._busy = False
        for m in members:
            m.group = self
            m.fsm.sync = True

    @property
    def state(self) -> str:
        return self.core.state

    def _view(self) -> dict[str, Member]:
        return {m.name: Member(m.fsm.state, m.fsm.wants, m.own_fault) for m in self.members}

    def entered(self, router: Router, state: str) -> None:
        self._run(lambda: self.core.entered(router.name, state, self._view()))

    def fault_changed(self, router: Router) -> None:
        self._run(lambda: self.core.faults(self._view()))

    def wants_master(self, router: Router) -> None:
        self._run(lambda: self.core.want_master(router.name, self._view()))

    def _run(self, decide: Callable[[], list[Command]]) -> None:
        if self._busy:  # a member we are moving reports back: the group settles below
            return
        self._busy = True
        try:
            for c in decide():
                self._apply(c)
        finally:
            self._busy = False
        for c in self.core.settle(self._view()):
            self._apply(c)

    def _apply(self, c: Command) -> None:
        match c:
            case Force(member=name, to=to, reason=reason):
                self.by_name[name].force(to, reason)
            case GroupFault(member=name, fault=fault):
                m = self.by_name[name]
                m.group_fault = fault
                m.set_fault()
            case GroupEntered(state=state):
                name = self.cfg.name
                log.info("VRRP_Group(%s) Syncing instances to %s state", name, state)
                for fifo in self.fifos:
                    fifo.write(f'GROUP "{name}" {state}')
                if self.mailer is not None:
                    self.mailer.group_state(name, state)
                # run through a member: the same stop-time drain
                self.members[0].run_notify(self.cfg.notify, state, ("GROUP", name, state))


class VrrpDaemon:
    def __init__(self, cfg: Config, keep_on_stop: bool = False,
                 addrs: VrrpPlane | None = None, fifos: list[Fifo] | None = None,
                 fw: firewall.Firewall | None = None, before: Config | None = None) -> None:
        cfg = enforce(cfg, "vrrp")  # the script policy, once per load: refused scripts out
        self.cfg = cfg
        self.before = before  # at a reload: the previous config (its static entries)
        self.keep_on_stop = keep_on_stop
        g = cfg.global_defs
        self.addrs = addrs or Worker()  # a reload keeps the rtnetlink worker
        self.fw_reused = fw is not None  # and the firewall table
        self.static_watch = static.Watch(cfg, self.addrs)
        self.firewall = fw or firewall.Firewall(firewall.plan(cfg))
        notify_fifos = ((g.notify_fifo, g.notify_fifo_script),
                 (g.vrrp_notify_fifo, g.vrrp_notify_fifo_script))
        kept = {(f.path, f.script): f for f in fifos or ()}  # a reload keeps them open
        self.fifos = [kept.get((p, s)) or Fifo(p, s) for p, s in
                      {p: s for p, s in notify_fifos if p}.items()]
        self.trackers = Trackers(link_up)
        self.trackers.scripts = {s.name: ScriptTracker(s) for s in cfg.vrrp_scripts}
        self.trackers.files = {f.name: FileTracker(f) for f in cfg.track_files}
        self.trackers.processes = {p.name: ProcessTracker(p) for p in cfg.track_processes}
        self.routers = [Router(i, g, self.addrs, self.fifos) for i in cfg.vrrp_instances]
        self.by_name = {r.name: r for r in self.routers}
        sd = g.lvs_sync_daemon
        if sd is not None and sd.vrrp_instance in self.by_name:  # else: the LVS side's
            r = self.by_name[sd.vrrp_instance]
            r.syncd = SyncdFollower(SyncdParams.of(sd, r.vrid))
        settings = MailSettings.from_global(g)
        self.mailer = Mailer(settings) if settings is not None else None
        for r in self.routers:
            if vrrp_enabled(r.cfg.smtp_alert, g):
                r.mailer = self.mailer
        self.sockets: dict[tuple[str, int, bool, int], VrrpSocket] = {}
        self.demux: dict[tuple[str, int, int], Router] = {}
        self.unknown_vrid = 0
        self.groups: list[SyncGroup] = []
        for sg in cfg.vrrp_sync_groups:
            members = [self.by_name[n] for n in sg.group if n in self.by_name]
            self.groups.append(SyncGroup(sg, members, self.fifos))
            for m in members:
                self._track(m, sg)
            if vrrp_enabled(sg.smtp_alert, g):
                self.groups[-1].mailer = self.mailer
        for r in self.routers:
            r.firewall = self.firewall
            self._track(r, r.cfg)
            if not r.cfg.dont_track_primary:
                r.track(self.trackers.interface(r.ifname), 0, False)

    def _track(self, r: Router, owner: VrrpInstance | VrrpSyncGroup) -> None:
        t = self.trackers
        group = r.group.cfg if isinstance(r.group, SyncGroup) else None
        floating = group is None or group.sync_group_tracking_weight

        def add(tracker: Tracker, kind: str, name: str, w: int, reverse: bool) -> None:
            weight = member_weight(kind, w, floating)
            if weight != w:
                log.warning("(%s) %s weight %d of tracked %s %s due to SYNC group", r.name,
                            "ignoring" if weight is None else "zeroing", w, kind, name)
            if weight is not None:
                r.track(tracker, weight, reverse)

        # a reference's own weight wins; else the tracker definition's weight and reverse
        for kind, refs, table in (("script", owner.track_script, t.scripts),
                                  ("file", owner.track_file, t.files),
                                  ("process", owner.track_process, t.processes)):
            for ref in refs:
                tracker = table.get(ref.name)
                if tracker is not None:
                    own = ref.weight is not None
                    w = ref.weight if ref.weight is not None else tracker.spec.weight
                    add(tracker, kind, ref.name, w,
                        ref.reverse if own else tracker.spec.weight_reverse)
        for ref in owner.track_interface:
            add(t.interface(ref.name), "interface", ref.name, ref.weight or 0, ref.reverse)

    def _socket(self, ifname: str, family: int, listen: bool,
                proto: int = VRRP_PROTO) -> VrrpSocket:
        key = (ifname, family, listen, proto)
        if key not in self.sockets:
            s = VrrpSocket(ifname, family, listen, proto)
            s.start(asyncio.get_running_loop(), self._received)
            self.sockets[key] = s
        return self.sockets[key]

    def _received(self, sock: VrrpSocket, rx: Received) -> None:
        vrid = rx.payload[1] if len(rx.payload) > 1 else -1
        router = self.demux.get((sock.ifname, sock.family, vrid))
        if router is None:
            self.unknown_vrid += 1
            return
        router.receive(rx)

    async def start(self, adopt: bool = False,
                    previous: dict[tuple[str, int, int], Router] | None = None) -> None:
        """`adopt`: a restarted child resumes MASTER where its VIPs are still in place;
        `previous`: a reload's old instances, matched by interface, family and VRID."""
        g = self.cfg.global_defs
        if g.vrrp_startup_delay and not adopt and previous is None:
            log.info("Delaying startup for %g seconds", g.vrrp_startup_delay)
            await asyncio.sleep(g.vrrp_startup_delay)
        todo = static.ops(self.cfg, self.before, fresh=not adopt)
        self.addrs.submit(lambda a: static.apply(a, todo)).result()
        self.static_watch.start()
        for r in self.routers:
            try:
                vmac: str | None = None
                if r.vmac:
                    # IPv6: the VMAC gets our advert source (keepalived: not with
                    # vmac_xmit_base, where adverts leave from the base)
                    src = "" if r.cfg.vmac_xmit_base else (
                        r.cfg.unicast_src_ip if r.cfg.unicast_peer else r.cfg.mcast_src_ip)
                    self.addrs.ensure_vmac(r.vmac, r.ifname, r.vrid, r.family, src)
                    if not r.cfg.vmac_xmit_base and self.addrs.index(r.vmac) is not None:
                        vmac = r.vmac
                # A private macvlan takes multicast frames whose source MAC is its own
                # (the peer's adverts from the shared VMAC) away from the base interface:
                # listen on the VMAC. Unicast adverts still arrive at the base's MAC.
                rx_dev = vmac if vmac and not r.cfg.unicast_peer else r.ifname
                proto = IPPROTO_AH if r.ah is not None else VRRP_PROTO
                rx = self._socket(rx_dev, r.family, True, proto)
                tx = self._socket(vmac, r.family, False, proto) if vmac and rx_dev != vmac \
                    else rx
                r.attach(rx, tx)
            except OSError as e:
                log.error("(%s) cannot open VRRP socket on %s: %s", r.name, r.ifname,
                          e.strerror or e)
                continue
            self.demux[(rx.ifname, r.family, r.vrid)] = r
        self.trackers.start()
        fw = self.firewall
        if self.fw_reused:
            new = firewall.plan(self.cfg)
            self.addrs.submit(lambda _a: fw.reconfigure(new)).result()
        else:  # a leftover table of a crashed run is replaced
            self.addrs.submit(lambda _a: fw.start()).result()
        loop = asyncio.get_running_loop()
        for r in self.routers:  # a sync group may move members not started yet
            r.loop = loop
        previous = previous or {}
        self._adopt_syncd(previous.values())
        old_mailers = {r.mailer for r in previous.values() if r.mailer is not None}
        for r in self.routers:
            old = previous.pop(r.key, None)
            if old is not None and old.ah is not None and r.ah is not None:
                r.ah = old.ah  # keepalived keeps the AH sequence number across a reload
            if old is not None and old.fsm.held:  # an operator's handover outlives a reload
                r.fsm.held, r.held_by = True, old.held_by
            if old is not None and old.fsm.state == fsm.MASTER:
                keep = {(v.address, v.prefixlen, v.dev) for v in r.all_vips}
                for v in old.all_vips:
                    if (v.address, v.prefixlen, v.dev) not in keep:
                        self.addrs.set_vip("delete", v, old.dev)
                r.resume_master("reload")
            elif old is None and adopt and r.holds_vips():
                r.resume_master("restarted, VIPs in place")
            else:
                r.start()
        for old in previous.values():  # instances the new config dropped (loop kept)
            old.stop()
        for mailer in old_mailers:  # their last alerts still go out, then the thread ends
            mailer.close()

    def _adopt_syncd(self, previous: Iterable[Router]) -> None:
        """A reload keeps the sync daemon when its options stay; else the old one stops."""
        old = next((r.syncd for r in previous if r.syncd is not None), None)
        if old is None:
            return
        new = next((r.syncd for r in self.routers if r.syncd is not None), None)
        self.addrs.sync_daemon(new.adopt(old) if new is not None else old.stop())

    async def handover(self) -> dict[tuple[str, int, int], Router]:
        """For a reload: stop this daemon's loops and sockets, leave addresses as they
        are, and hand the instances to the next daemon."""
        for r in self.routers:
            r.detach()
        self.trackers.stop()
        self.static_watch.stop()
        for s in self.sockets.values():
            s.close()
        self.sockets.clear()
        await asyncio.gather(*(r.drain(1.0) for r in self.routers))
        return {r.key: r for r in self.routers}

    async def stop(self) -> None:
        self.static_watch.stop()  # before the entries go
        for r in self.routers:
            r.stop(keep_addresses=self.keep_on_stop)
        self.trackers.stop()
        await asyncio.gather(*(r.drain() for r in self.routers))
        if self.mailer is not None:
            await self.mailer.drain()
            self.mailer.close()
        for s in self.sockets.values():
            s.close()
        if not self.keep_on_stop:
            for r in self.routers:
                if r.vmac:
                    self.addrs.remove_link(r.vmac)
        fw = self.firewall  # keepalived drops its table also with --dont-release-vrrp
        self.addrs.submit(lambda _a: fw.stop()).result()
        todo = static.ops(None, self.cfg)
        self.addrs.submit(lambda a: static.apply(a, todo)).result()
        for fifo in self.fifos:
            fifo.close()
        self.addrs.close()

    def status(self) -> dict[str, object]:
        return {"instances": [r.status() for r in self.routers],
                "sync_groups": [{"name": g.cfg.name, "state": g.state} for g in self.groups],
                "unknown_vrid": self.unknown_vrid}
