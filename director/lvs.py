"""The checker side's LVS core: pools in, IPVS table kept equal to them.

Start: read the kernel table once, apply the diff (only our services, plus
everything when `lvs_flush`). Then every health or weight event changes a pool,
and only that virtual server's difference is sent, diffed against what we last
applied (no kernel re-read per event). A reload diffs the whole new desired table
against the kernel, removing services the old config had and the new one lacks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from conf.model import Config, VirtualServer
from daemonlib.fifo import Fifo
from daemonlib.ipvs_syncd import Role, SyncdCommand, SyncdParams
from daemonlib.notify_order import InOrder
from daemonlib.scripts import enforce
from daemonlib.smtp import (
    Mailer,
    MailSettings,
    checker_enabled,
    real_server_alert,
    virtual_server_alert,
)

from .dataplane import Plane
from .desired import desired_table, service_keys, service_spec
from .ipvs_table import DestKey, Op, SvcKey, Table, apply_in_place, apply_ops, diff
from .overrides import Override
from .pool import Event, Pool, QuorumEvent, RsEvent, RsState, rs_name

log = logging.getLogger("director.lvs")


def _both(cfg: Config | None) -> SyncdParams | None:
    """The options of the sync daemons this side runs: `lvs_sync_daemon` without a VRRP
    instance (one that names an instance has its daemons driven by the VRRP side)."""
    sd = cfg.global_defs.lvs_sync_daemon if cfg is not None else None
    return SyncdParams.of(sd, None) if sd is not None and sd.vrrp_instance is None else None


def syncd_commands(old: Config | None, new: Config | None) -> list[SyncdCommand]:
    """keepalived's checker: at start (`old` None) both daemons, after stopping leftovers
    of a crashed run; at stop (`new` None) both stopped; at a reload restarted only when
    their options change."""
    was, now = _both(old), _both(new)
    if was == now:
        return []
    roles: tuple[Role, Role] = ("master", "backup")
    cmds = []
    if old is None and now is not None:
        cmds += [SyncdCommand("stop", r, now, cleanup=True) for r in roles]
    elif was is not None:
        cmds += [SyncdCommand("stop", r, was) for r in roles]
    if now is not None:
        cmds += [SyncdCommand("start", r, now) for r in roles]
    return cmds


class Lvs:
    def __init__(self, cfg: Config, plane: Plane, keep_on_stop: bool = False) -> None:
        self.plane = plane
        self.keep_on_stop = keep_on_stop
        self.current: Table = {}
        self.owned: set[SvcKey] = set()
        self._notifies = InOrder()  # notify_up/down, quorum_up/down
        self.mailer: Mailer | None = None
        self.fifo: Fifo | None = None
        self.on_quorum: Callable[[], None] | None = None  # after a quorum change is applied
        cfg = enforce(cfg, "checker")  # the script policy, once per load: refused scripts out
        self._set_config(cfg, [Pool(vs) for vs in cfg.virtual_servers],
                         [service_keys(vs, cfg) for vs in cfg.virtual_servers])

    def _set_config(self, cfg: Config, pools: list[Pool], keys: list[list[SvcKey]]) -> None:
        self.cfg = cfg
        self.pools = pools
        self.keys = keys
        g = cfg.global_defs
        if self.mailer is not None:  # a reload: queued alerts still go out
            self.mailer.close()
        settings = MailSettings.from_global(g)
        self.mailer = Mailer(settings) if settings is not None else None
        path, script = ((g.lvs_notify_fifo, g.lvs_notify_fifo_script) if g.lvs_notify_fifo
                        else (g.notify_fifo, g.notify_fifo_script))
        if self.fifo and (self.fifo.path, self.fifo.script) == (path, script):
            return  # a reload that keeps the FIFO keeps it open (and its reader)
        if self.fifo:
            self.fifo.close()
        self.fifo = Fifo(path, script) if path else None

    # -- whole-table operations ------------------------------------------------
    async def _sync_all(self, owned: set[SvcKey], flush: bool,
                        first: tuple[list[Op], list[Op]] = ([], [])) -> list[Op]:
        """The kernel's table made the desired one. `first`: the operations a reload
        sent already and those of them refused: counted here as part of this sync, and
        a refused one is not tried again (one attempt, one error, as in one diff)."""
        desired = desired_table(self.cfg, self.pools, self.keys)
        current = await self.plane.read()
        ops = diff(desired, current, owned=owned, flush=flush)
        sent, refused = first
        if refused:
            again = set(refused)
            ops = [op for op in ops if op not in again]
        failed = {id(op) for op, _ in await self.plane.apply(ops)}
        self.current = apply_ops(current, [op for op in ops if id(op) not in failed])
        self.owned = set(desired)
        n_failed = len(failed) + len(refused)
        log.info("IPVS: %d virtual services, %d operations applied, %d refused",
                 len(desired), len(sent) + len(ops) - n_failed, n_failed)
        return sent + ops

    async def start(self, adopt: bool = False,
                    first: tuple[list[Op], list[Op]] | None = None) -> list[Op]:
        """`adopt` (a restarted checker child): real servers missing from the kernel (or
        inhibited at weight 0) start down, so the table is left as it is until the
        checkers, starting from that state, say otherwise. `first`: the operations the
        child's first programming sent before the event loop, and those refused
        (director/first_ipvs.py: only where that is all a start does)."""
        g = self.cfg.global_defs
        if first is not None:
            return await self._sync_all(set(), g.lvs_flush, first)
        if adopt:
            self._adopt(await self.plane.read())
        if (g.lvs_timeout_tcp, g.lvs_timeout_tcpfin, g.lvs_timeout_udp) != (None, None, None):
            await self.plane.set_timeouts(g.lvs_timeout_tcp, g.lvs_timeout_tcpfin,
                                          g.lvs_timeout_udp)
        await self.plane.sync_daemon(syncd_commands(None, self.cfg))
        return await self._sync_all(set(), g.lvs_flush)

    def _adopt(self, current: Table) -> None:
        for keys, pool in zip(self.keys, self.pools, strict=True):
            entry = current.get(keys[0]) if keys else None
            if entry is None:
                continue
            dests = entry[1]
            for s in pool.servers:
                d = dests.get(DestKey(s.rs.address, s.rs.port or 0))
                # in the table and serving: up, even with alpha (which only says how a
                # fresh start begins), so the adopted table and quorum stay as they are
                s.checkers_up = [d is not None and not (d.weight == 0 and s.rs.weight > 0)
                                 ] * len(s.checkers_up)
            pool.quorum_up = pool.weight_sum() >= pool.vs.quorum

    async def reload(self, cfg: Config) -> list[Op]:
        """Adopt a new config; real servers that stay keep their health.

        The virtual servers that changed are applied first, from the table this side
        holds; then, as before, the whole desired table is compared with the kernel's
        (which corrects what changed behind our back, and retries what was refused)."""
        cfg = enforce(cfg, "checker")
        old_pools, old_keys = self.pools, self.keys
        # the incremental parse hands back the very objects of blocks that did not
        # change: their pools and keys carry over without a look inside
        same = {id(p.vs): i for i, p in enumerate(old_pools)}
        n = len(cfg.virtual_servers)
        pools: list[Pool | None] = [None] * n
        all_keys: list[list[SvcKey] | None] = [None] * n
        changed: list[int] = []  # the pools whose destinations may differ from the table
        for j, vs in enumerate(cfg.virtual_servers):
            i = same.get(id(vs))
            if i is None or old_pools[i].vs is not vs or vs.group is not None:
                continue
            del same[id(vs)]
            pool = old_pools[i]
            was = pool.quorum_up
            pool.quorum_up = pool.weight_sum() >= vs.quorum
            if pool.quorum_up != was:
                changed.append(j)
            pools[j], all_keys[j] = pool, old_keys[i]
        before = {tuple(old_keys[i]): old_pools[i] for i in sorted(same.values())}
        for j, vs in enumerate(cfg.virtual_servers):
            if pools[j] is not None:
                continue
            keys = service_keys(vs, cfg)
            all_keys[j] = keys
            prev_pool = before.pop(tuple(keys), None)
            changed.append(j)
            if prev_pool is not None and prev_pool.vs == vs:
                pools[j] = _carried(prev_pool, vs)  # unchanged, a new object
                continue
            pool = Pool(vs)
            old = {(s.rs.address, s.rs.port): s for s in prev_pool.servers} if prev_pool else {}
            for s in pool.servers:
                prev = old.pop((s.rs.address, s.rs.port), None)
                if prev is not None and len(prev.checkers_up) == len(s.checkers_up):
                    s.checkers_up = list(prev.checkers_up)
                    if prev.rs.weight == s.rs.weight:
                        s.weight = prev.weight  # a dynamic weight survives
                if prev is not None:
                    s.override = prev.override  # the operator's, until `ctl clear`
            pool.quorum_up = pool.weight_sum() >= vs.quorum
            pools[j] = pool
            _dropped(old.values())
        for gone in before.values():
            _dropped(gone.servers)
        previously_owned = set(self.owned)
        await self.plane.sync_daemon(syncd_commands(self.cfg, cfg))
        self._set_config(cfg, pools, all_keys)  # type: ignore[arg-type]  # all filled
        first: tuple[list[Op], list[Op]] = ([], [])
        if len(changed) * 4 <= n:  # a few changed: they go first
            first = await self._apply_changed(sorted(changed), previously_owned)
        return await self._sync_all(previously_owned, False, first)

    async def _apply_changed(self, changed: list[int], owned: set[SvcKey]
                             ) -> tuple[list[Op], list[Op]]:
        """The changed virtual servers' operations (and the removed services'), from the
        table this side holds: what a reload changes reaches the kernel before the
        whole table is read back and compared. The operations sent, and those refused."""
        desired: Table = {}
        for j in changed:
            vs = self.cfg.virtual_servers[j]
            dests = self.pools[j].dests()
            for key in self.keys[j]:
                desired[key] = (service_spec(vs, key.family), dict(dests))
        wanted = {k for keys in self.keys for k in keys}
        gone = [k for k in owned if k not in wanted]
        current = {k: self.current[k] for k in (*desired, *gone) if k in self.current}
        ops = diff(desired, current, owned=gone)
        refused = [op for op, _ in await self.plane.apply(ops)]
        failed = {id(op) for op in refused}
        table = dict(self.current)  # the untouched services' entries shared, not copied
        for k in current:
            table[k] = (current[k][0], dict(current[k][1]))
        apply_in_place(table, [op for op in ops if id(op) not in failed])
        self.current = table
        return ops, refused

    async def stop(self) -> list[Op]:
        for pool in self.pools:
            self._events(pool.stop_events(), pool)
        ops: list[Op] = []
        g = self.cfg.global_defs
        if g.lvs_flush_on_stop == "ON":
            ops = [Op("del", k) for k in sorted(await self.plane.read())]
        elif not self.keep_on_stop:
            ops = [Op("del", k) for k in sorted(self.owned) if k in self.current]
        await self.plane.apply(ops)
        await self.plane.sync_daemon(syncd_commands(self.cfg, None))
        await self._notifies.drain(5)
        if self.fifo:
            self.fifo.close()
        if self.mailer is not None:
            await self.mailer.drain()
            self.mailer.close()
        return ops

    # -- events ------------------------------------------------------------------
    async def set_checker(self, vs_index: int, rs_index: int, checker_index: int,
                          up: bool) -> list[Op]:
        pool = self.pools[vs_index]
        was = pool.servers[rs_index].checkers_up[checker_index]
        events = pool.set_checker(rs_index, checker_index, up)
        if was != up:
            self._mail_checker(pool, rs_index, checker_index, up)
        return await self._after(vs_index, events)

    async def set_weight(self, vs_index: int, rs_index: int, weight: int) -> list[Op]:
        events = self.pools[vs_index].set_weight(rs_index, weight)
        return await self._after(vs_index, events)

    async def set_override(self, vs_index: int, rs_index: int,
                           override: Override | None) -> list[Op]:
        """An operator's override (director ctl) applied to the table at once."""
        self.pools[vs_index].servers[rs_index].override = override
        return await self._after(vs_index, [])

    async def _after(self, vs_index: int, events: list[Event]) -> list[Op]:
        self._events(events, self.pools[vs_index])
        keys = self.keys[vs_index]
        dests = self.pools[vs_index].dests()
        desired = {k: (self.current[k][0], dict(dests)) for k in keys if k in self.current}
        current = {k: self.current[k] for k in desired}
        ops = diff(desired, current)
        failed = {id(op) for op, _ in await self.plane.apply(ops)}
        self.current = apply_ops(self.current, [op for op in ops if id(op) not in failed])
        if self.on_quorum is not None and any(isinstance(e, QuorumEvent) for e in events):
            self.on_quorum()  # announced after IPVS has the servers, withdrawn after loss
        return ops

    def _mail_checker(self, pool: Pool, rs_index: int, checker_index: int, up: bool) -> None:
        """keepalived mails every checker transition of a real server with smtp_alert."""
        state = pool.servers[rs_index]
        if self.mailer is None or not checker_enabled(state.rs.smtp_alert,
                                                      self.cfg.global_defs, True):
            return
        kind = state.rs.checkers[checker_index].type.replace("_", " ")
        body = f"=> {kind} {'succeed' if up else 'failed'} on service <="
        self.mailer.send(real_server_alert(self.mailer.settings.router_id,
                                           rs_name(pool.vs, state.rs), pool.vs.key,
                                           state.alive, body))

    def _events(self, events: list[Event], pool: Pool) -> None:
        for e in events:
            log.info("%s", e.log)
            if self.fifo:
                self.fifo.write(e.fifo)
            if isinstance(e, QuorumEvent) and self.mailer is not None and checker_enabled(
                    pool.vs.smtp_alert, self.cfg.global_defs, False):
                self.mailer.send(virtual_server_alert(self.mailer.settings.router_id,
                                                      pool.vs.key, e.up, f"=> {e.log} <="))
            if e.script is not None:
                what = ("notify_up" if e.up else "notify_down") if isinstance(e, RsEvent) else (
                    "quorum_up" if e.up else "quorum_down")
                self._notifies.run(e.subject, [(e.script, (), what)])


def _carried(pool: Pool, vs: VirtualServer) -> Pool:
    """An unchanged virtual server's pool over a reload: its servers keep their health,
    dynamic weights and overrides (as a changed one's matched servers do), and now
    point at the new model's objects (equal to the old), so the old model is freed."""
    pool.vs = vs
    for s, rs in zip(pool.servers, vs.real_servers, strict=True):
        if s.made is not None:
            s.made = (rs, s.made[1], s.made[2])
        s.rs = rs
    pool.quorum_up = pool.weight_sum() >= vs.quorum
    return pool


def _dropped(servers: Iterable[RsState]) -> None:
    for s in servers:
        if s.override is not None:
            log.warning("Override of real server %s:%s dropped: the new configuration "
                        "no longer has it", s.rs.address, s.rs.port or 0)
