"""`director -C`: the checker/LVS side in the foreground (the watchdog comes later).

The health checkers' transitions go through one queue into the LVS core, in the order
they happened, so the IPVS table always follows the latest verdict.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import logging
import os
from typing import cast

from conf.load import reload as reload_config
from conf.model import Config
from daemonlib import safefile
from daemonlib.control import Server
from daemonlib.runtime import Signals, publish

from .bgp.core import Want, keep_configured, wants
from .bgp.link import SpeakerLink
from .ctl_lvs import LvsControl
from .dataplane import choose_plane
from .health import Health
from .ipvs_table import DestKey
from .lvs import Lvs
from .pool import rs_name

log = logging.getLogger("director")
DRY_RUN_STATE = "ipvs-dry-run.json"


def bgp_wants(lvs: Lvs) -> tuple[Want, ...]:
    return wants(lvs.cfg, [p.quorum_up for p in lvs.pools])


async def run(args: argparse.Namespace, cfg: Config, adopt: bool = False) -> int:
    with contextlib.suppress(OSError):  # the dry-run plane keeps its table there
        os.close(safefile.open_dir(args.runtime_dir, create=True, mode=0o700))
    plane = await choose_plane(args.dry_run, os.path.join(args.runtime_dir, DRY_RUN_STATE),
                               adopt)
    lvs = Lvs(cfg, plane, keep_on_stop=args.dont_release_ipvs)
    del cfg  # lvs.cfg from now on: a reload frees the old model
    health = Health(lvs)
    signals = Signals()
    await lvs.start(adopt=adopt)
    link = None
    if lvs.cfg.bgp_speaker is not None:  # the speaker child announces what the pools want
        link = SpeakerLink(args.runtime_dir)
        lvs.on_quorum = lambda: link.update(bgp_wants(lvs))
        link.update(bgp_wants(lvs))
        link.start()
    health.start()
    log.info("Startup complete")
    reloads = 0

    async def status() -> dict[str, object]:
        return {**await lvs_status(lvs, health), "reloads": reloads}

    publisher = asyncio.ensure_future(publish(args.runtime_dir, "lvs.json", status))
    state_file = os.path.join(args.runtime_dir, "overrides.json")
    control = LvsControl(lvs, status, args, state_file)
    if adopt:
        await control.restore()
    else:  # a fresh daemon starts from the config alone
        with contextlib.suppress(OSError):
            os.unlink(state_file)
    server = Server(args.runtime_dir, "lvs", control.handle)
    await server.start()

    async def reload() -> None:
        nonlocal reloads
        log.info("Reloading")
        new = reload_config(args.config, args.config_id, args.all_config, log)
        if new is not None:
            if link is not None and link.wants is not None:
                # what the new config no longer announces is withdrawn before it goes
                await link.sync(keep_configured(link.wants, new))
            await health.stop()
            await lvs.reload(new)
            if link is not None:
                link.update(bgp_wants(lvs))
            health.start()
            control.after_reload()
            reloads += 1

    await signals.serve(reload)
    log.info("Stopping")
    await server.close()
    if link is not None:  # no withdrawal from here: the speaker decides at its own stop
        await link.close()
    control.stop()
    publisher.cancel()
    await health.stop()
    await lvs.stop()
    plane.close()
    return 0


def _total(items: list[dict[str, int]]) -> dict[str, int]:
    """Kernel counters summed over the services a virtual server stands for (groups)."""
    return dict(sum((collections.Counter(i) for i in items), collections.Counter()))


async def lvs_status(lvs: Lvs, health: Health) -> dict[str, object]:
    """Virtual and real servers with health, weights, checkers and the kernel's counters."""
    _table, stats = await lvs.plane.read_with_stats()
    current = lvs.current
    checks: dict[tuple[int, int], list[dict[str, object]]] = {}
    for c in (health.engine.status() if health.engine else []):
        key = cast(list[int], c["key"])
        checks.setdefault((key[0], key[1]), []).append(c)
    out = []
    for vi, (vs, keys, pool) in enumerate(zip(lvs.cfg.virtual_servers, lvs.keys, lvs.pools,
                                               strict=True)):
        servers = []
        for ri, s in enumerate(pool.servers):
            dk = DestKey(s.rs.address, s.rs.port or 0)
            st = _total([stats[(k, dk)] for k in keys if (k, dk) in stats])
            # the weight IPVS has now (None: not in the table), first service of the VS
            have = next((current[k][1].get(dk) for k in keys if k in current), None)
            servers.append({"name": rs_name(vs, s.rs), "address": s.rs.address,
                            "port": s.rs.port or 0, "alive": s.alive, "weight": s.weight,
                            "configured_weight": s.rs.weight,
                            "effective_weight": None if have is None else have.weight,
                            "override": s.override.view() if s.override else None,
                            "activeconns": st.get("activeconns", 0),
                            "inactconns": st.get("inactconns", 0),
                            "checkers": checks.get((vi, ri), []), "stats": st})
        out.append({"name": vs.key, "protocol": vs.protocol, "address": vs.address,
                    "port": vs.port, "fwmark": vs.fwmark, "group": vs.group,
                    "lb_algo": vs.lb_algo, "lb_kind": vs.lb_kind, "quorum_up": pool.quorum_up,
                    "stats": _total([stats[k] for k in keys if k in stats]),
                    "real_servers": servers})
    return {"virtual_servers": out, "dry_run": lvs.plane.dry_run}
