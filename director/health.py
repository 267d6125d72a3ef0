"""The checker engine wired to the LVS core: verdicts queued in order, applied one by one."""

from __future__ import annotations

import asyncio
import logging

from checkers.engine import Engine, Key, build

from .lvs import Lvs
from .pool import rs_name

log = logging.getLogger("director.checkers")


class Health:
    def __init__(self, lvs: Lvs) -> None:
        self.lvs = lvs
        self.engine: Engine | None = None
        self.queue: asyncio.Queue[tuple[str, Key, object]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        cfg = self.lvs.cfg
        g = cfg.global_defs
        if any(ck.type == "SSL_GET" for vs in cfg.virtual_servers for rs in vs.real_servers
               for ck in rs.checkers):
            from checkers import http

            http.configure(cfg.ssl)
        self.engine = Engine(lambda k, up: self.queue.put_nowait(("up", k, up)),
                             lambda k, w: self.queue.put_nowait(("weight", k, w)),
                             log_all_failures=g.checker_log_all_failures)
        pools = self.lvs.pools
        build(cfg, self.engine, lambda k: pools[k[0]].servers[k[1]].checkers_up[k[2]], rs_name)
        self.engine.start()
        if self._worker is None:
            self._worker = asyncio.ensure_future(self._apply())
        log.info("Health checkers: %d started", len(self.engine.jobs))

    async def _apply(self) -> None:
        while True:
            what, (vi, ri, ci), value = await self.queue.get()
            try:
                if what == "up":
                    await self.lvs.set_checker(vi, ri, ci, bool(value))
                else:
                    await self.lvs.set_weight(vi, ri, int(value))  # type: ignore[call-overload]
            except Exception as e:  # one failed update must not stop the rest
                log.error("applying a checker result for %s failed: %s", (vi, ri, ci), e)
            finally:
                self.queue.task_done()

    async def stop(self) -> None:
        """Stop checking; verdicts already queued are applied first (a reload keeps them)."""
        if self.engine is not None:
            self.engine.stop()
        await self.queue.join()
