"""The VRRP child's side of the control socket: status, handover/takeover/release of an
instance, reload. Every handler is a few attribute changes and at most one advert:
nothing here waits, so a request never delays the instances' timers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from daemonlib.control import VRRP_COMMANDS, Peer, Reply, Request, logged, reload_request

from . import fsm

log = logging.getLogger("director.ctl")


class VrrpControl:
    def __init__(self, daemon: Callable[[], Any], status: Callable[[], dict[str, Any]],
                 args: Any) -> None:
        self.daemon = daemon  # the current VrrpDaemon (a reload replaces it)
        self.status = status
        self.args = args

    async def handle(self, req: Request, peer: Peer) -> Reply:
        if req.cmd == "status":
            return Reply(True, "", self.status())
        if req.cmd == "reload":
            a = self.args
            return await reload_request(a.config, a.config_id, a.all_config, peer)
        if req.cmd not in VRRP_COMMANDS:
            return Reply(False, f"{req.cmd}: not a command of the VRRP child")
        d = self.daemon()
        r = d.by_name.get(req.instance)
        if r is None:
            known = ", ".join(sorted(d.by_name)[:20]) or "none configured"
            return Reply(False, f"no vrrp_instance {req.instance!r} (known: {known})")
        who = logged(req, peer)
        before = r.fsm.state
        if req.cmd == "handover":
            if before == fsm.INIT:
                return Reply(False, f"{r.name} has not started (no socket?): nothing to hand "
                                    "over")
            r.handover(who)
            msg = (f"{r.name}: handed over (priority 0 advert sent), held BACKUP until "
                   "`takeover` or `clear`" if before == fsm.MASTER else
                   f"{r.name} is {before}: held BACKUP (it will not take over) until "
                   "`takeover` or `clear`")
        elif req.cmd == "takeover":
            if before in (fsm.FAULT, fsm.INIT):
                return Reply(False, f"{r.name} is {before}: it cannot take over")
            r.release(takeover=True)
            msg = (f"{r.name}: already MASTER" if before == fsm.MASTER else
                   f"{r.name}: MASTER now (priority {r.fsm.priority}; a peer with a higher "
                   "priority takes it back unless it was handed over)")
        else:
            if not r.fsm.held:
                return Reply(True, f"{r.name} has no handover to clear")
            r.release(takeover=False)
            msg = f"{r.name}: handover cleared; the normal election resumes"
        log.info("control: %s %s asked by %s: %s", req.cmd, r.name, who, msg)
        return Reply(True, msg, r.status())
