"""The checker child's side of the control socket: status, drain/enable/weight/clear of
real servers, and reload. The decisions are `overrides`' (pure); this module resolves
names, applies them through the LVS core, watches drains and logs who asked."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable

from daemonlib.control import (
    LVS_COMMANDS,
    Peer,
    Reply,
    Request,
    logged,
    reload_request,
)
from daemonlib.runtime import write_json

from .desired import service_keys
from .ipvs_table import DestKey, SvcKey
from .lvs import Lvs
from .overrides import DRAINED, DRAINING, Override, command, drain_step, find_rs, find_vs
from .pool import rs_name

TYPE_CHECKING = False  # (typing itself is not imported at run time)
if TYPE_CHECKING:
    from typing import Any

log = logging.getLogger("director.ctl")

DRAIN_POLL = 0.5  # seconds between two reads of a draining server's connections
RsId = tuple[str, str, int]  # VS key, RS address, RS port: survives a reload


class LvsControl:
    def __init__(self, lvs: Lvs, status: Callable[[], Awaitable[dict[str, Any]]],
                 args: Any, state_file: str | None = None) -> None:
        self.lvs = lvs
        self.state_file = state_file
        self.status = status
        self.args = args
        self.waiters: dict[RsId, list[asyncio.Future[str]]] = {}
        self._watcher: asyncio.Task[None] | None = None

    async def handle(self, req: Request, peer: Peer) -> Reply:
        if req.cmd == "status":
            return Reply(True, "", await self.status())
        if req.cmd == "reload":
            a = self.args
            return await reload_request(a.config, a.config_id, a.all_config, peer)
        if req.cmd in LVS_COMMANDS:
            return await self._rs_command(req, logged(req, peer))
        return Reply(False, f"{req.cmd}: not a command of the checker child")

    async def _rs_command(self, req: Request, who: str) -> Reply:
        lvs = self.lvs
        try:
            vi = find_vs(lvs.cfg.virtual_servers, req.vs or "")
            vs = lvs.cfg.virtual_servers[vi]
            ri = find_rs(vs, req.rs or "")
        except ValueError as e:
            return Reply(False, str(e))
        state = lvs.pools[vi].servers[ri]
        name = f"real server {rs_name(vs, state.rs)} of VS {vs.key}"
        loop = asyncio.get_running_loop()
        out = command(state.override, req.cmd, weight=req.weight, timeout=req.timeout,
                      now=loop.time(), wall=time.time(), who=who, name=name)
        rid: RsId = (vs.key, state.rs.address, state.rs.port or 0)
        if out.changed:
            log.info("control: %s (%s asked by %s)", out.message, req.cmd, who)
            await lvs.set_override(vi, ri, out.override)
            self.save()
            if out.override is None or out.override.drain != DRAINING:
                self._resolve(rid, f"drain of {name} ended by {req.cmd} ({who})")
            self._watch()
        if not self._in_effect(vi, ri):
            return Reply(False, f"{out.message}; but IPVS refused the change (see the log)")
        if req.cmd == "drain" and req.wait and out.override is not None \
                and out.override.drain == DRAINING:
            fut: asyncio.Future[str] = loop.create_future()
            self.waiters.setdefault(rid, []).append(fut)
            return Reply(True, await fut)
        return Reply(True, out.message)

    def _in_effect(self, vi: int, ri: int) -> bool:
        """The table holds what the pool wants for this real server (IPVS accepted it)."""
        lvs = self.lvs
        vs = lvs.cfg.virtual_servers[vi]
        rs = vs.real_servers[ri]
        dk = DestKey(rs.address, rs.port or 0)
        want = lvs.pools[vi].dests().get(dk)
        for key in lvs.keys[vi]:
            entry = lvs.current.get(key)
            if entry is not None and entry[1].get(dk) != want:
                return False
        return True

    # -- kept for a restarted checker child (a crash is not a reload: same promise) --------
    def save(self) -> None:
        if not self.state_file:
            return
        rows = [{"vs": vs.key, "address": s.rs.address, "port": s.rs.port or 0,
                 "weight": s.override.weight, "drain": s.override.drain,
                 "who": s.override.who, "since": s.override.since}
                for vs, pool in zip(self.lvs.cfg.virtual_servers, self.lvs.pools, strict=True)
                for s in pool.servers if s.override is not None]
        try:
            write_json(self.state_file, rows)
        except OSError as e:
            log.error("control: saving overrides in %s: %s", self.state_file, e.strerror)

    async def restore(self) -> None:
        """A restarted child takes its predecessor's overrides (a drain resumes without its
        timeout: the deadline was the dead process's clock)."""
        if not self.state_file:
            return
        try:
            with open(self.state_file) as f:
                rows = json.load(f)
        except FileNotFoundError:
            return
        except (OSError, ValueError) as e:
            log.error("control: reading overrides from %s: %s", self.state_file, e)
            return
        where = {(vs.key, s.rs.address, s.rs.port or 0): (vi, ri)
                 for vi, (vs, pool) in enumerate(zip(self.lvs.cfg.virtual_servers,
                                                     self.lvs.pools, strict=True))
                 for ri, s in enumerate(pool.servers)}
        for row in rows if isinstance(rows, list) else []:
            try:
                at = where.get((row["vs"], row["address"], row["port"]))
                ov = Override(weight=row["weight"], drain=row["drain"], who=row["who"],
                              since=row["since"])
                if ov.drain not in (None, DRAINING, DRAINED) or not (
                        ov.weight is None or isinstance(ov.weight, int)):
                    raise TypeError
            except (KeyError, TypeError):
                log.error("control: %s: a malformed entry skipped", self.state_file)
                continue
            if at is not None:
                log.info("control: override of %s %s:%s kept from the previous process",
                         row["vs"], row["address"], row["port"])
                await self.lvs.set_override(*at, ov)
        self._watch()

    def _resolve(self, rid: RsId, message: str) -> None:
        for fut in self.waiters.pop(rid, []):
            if not fut.done():
                fut.set_result(message)

    def _watch(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.ensure_future(self._drains())

    def _draining(self) -> list[tuple[int, int]]:
        return [(vi, ri) for vi, pool in enumerate(self.lvs.pools)
                for ri, s in enumerate(pool.servers)
                if s.override is not None and s.override.drain == DRAINING]

    async def _drains(self) -> None:
        """While a real server drains: its active connections, summed over the services
        of its virtual server, read every DRAIN_POLL s; out of the table at 0 or timeout."""
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            todo = self._draining()
            if not todo:
                return
            started = loop.time()
            stats: dict[tuple[SvcKey, DestKey], dict[str, int]] | None = {}
            try:  # only the services of the draining servers' virtual servers
                counts = {}
                for k in {k for vi, _ri in todo if vi < len(self.lvs.keys)
                          for k in self.lvs.keys[vi] if k in self.lvs.current}:
                    for dk, st in (await self.lvs.plane.dest_stats(k)).items():
                        counts[(k, dk)] = st
                stats = counts
            except Exception as e:  # the kernel said no: try again next round
                failures += 1  # EBUSY while the status publisher's dump runs: routine
                (log.error if failures >= 3 else log.debug)(
                    "control: reading IPVS connection counts for drains: %s", e)
                stats = None
            else:
                failures = 0
            for vi, ri in todo if stats is not None else ():
                if vi >= len(self.lvs.pools) or ri >= len(self.lvs.pools[vi].servers):
                    continue  # a reload changed the pools meanwhile
                lvs = self.lvs
                vs = lvs.cfg.virtual_servers[vi]
                s = lvs.pools[vi].servers[ri]
                if s.override is None:
                    continue
                dk = DestKey(s.rs.address, s.rs.port or 0)
                active = sum((stats or {}).get((k, dk), {}).get("activeconns", 0)
                             for k in service_keys(vs, lvs.cfg))
                new, why = drain_step(s.override, active, loop.time())
                if why is None:
                    continue
                name = f"real server {rs_name(vs, s.rs)} of VS {vs.key}"
                await lvs.set_override(vi, ri, new)
                self.save()
                removed = self._in_effect(vi, ri)
                msg = (f"{name} drained ({why}): removed from IPVS" if removed else
                       f"{name} drained ({why}), but IPVS refused its removal (see the log)")
                log.info("control: %s (drain asked by %s)", msg, s.override.who)
                self._resolve((vs.key, s.rs.address, s.rs.port or 0), msg)
            # a big table takes long to read: poll it at most a fifth of the time
            await asyncio.sleep(max(DRAIN_POLL, 4 * (loop.time() - started)))

    def after_reload(self) -> None:
        """Drains carry on under the new config; a waiter for a server gone ends now."""
        live = {(vs.key, s.rs.address, s.rs.port or 0)
                for vs, pool in zip(self.lvs.cfg.virtual_servers, self.lvs.pools, strict=True)
                for s in pool.servers}
        for rid in [r for r in self.waiters if r not in live]:
            self._resolve(rid, f"{rid[0]} {rid[1]}:{rid[2]}: gone from the configuration "
                               "by a reload; drain abandoned")
        self._watch()

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        for rid in list(self.waiters):
            self._resolve(rid, "director is stopping; drain abandoned")
