"""`director -C`: the checker/LVS side in the foreground (the watchdog comes later).

The health checkers' transitions go through one queue into the LVS core, in the order
they happened, so the IPVS table always follows the latest verdict.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable

from conf.model import Config
from daemonlib import safefile
from daemonlib.runtime import Signals, Stale

from . import bundle
from .dataplane import KernelPlane, Plane, choose_plane
from .ipvs_table import DestKey, SvcKey
from .lvs import Lvs
from .pool import rs_name
from .prefork import WATCHED

TYPE_CHECKING = False  # (typing itself is not imported at run time)
if TYPE_CHECKING:
    from .bgp.core import Want
    from .first_ipvs import First
    from .health import Health

log = logging.getLogger("director")
DRY_RUN_STATE = "ipvs-dry-run.json"


def bgp_wants(lvs: Lvs) -> tuple[Want, ...]:
    from .bgp.core import wants

    return wants(lvs.cfg, [p.quorum_up for p in lvs.pools])


async def run(args: argparse.Namespace, cfg: Config, adopt: bool = False,
              first: First | None = None) -> int:
    """`first`: the table's first programming, done before the event loop (the
    checker child's first_ipvs.program), to be counted and logged here."""
    with contextlib.suppress(OSError):  # the dry-run plane keeps its table there
        os.close(safefile.open_dir(args.runtime_dir, create=True, mode=0o700))
    plane: Plane
    if first is not None:
        plane = KernelPlane(first.fast)
        plane.ops_sent = first.applied
        ipvs_log = logging.getLogger("director.ipvs")
        for fmt, values in first.notes:  # Plane.apply's lines, written after the fact
            ipvs_log.error(fmt, *values)
        log.debug("IPVS: first programming sent before the event loop (%d operations)",
                  len(first.ops))
    else:
        plane = await choose_plane(args.dry_run,
                                   os.path.join(args.runtime_dir, DRY_RUN_STATE), adopt)
    from conf import incremental

    incremental.adopt(cfg)  # the start-up load's blocks are this model's (see prime below)
    lvs = Lvs(cfg, plane, keep_on_stop=args.dont_release_ipvs)
    del cfg  # lvs.cfg from now on: a reload frees the old model
    signals = Signals()  # before the first op: a TERM mid-start still stops cleanly
    # the checker child keeps TERM/HUP blocked from its fork to here (a TERM during a
    # first programming made before the loop waits for these handlers: a clean stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, WATCHED)
    await lvs.start(adopt=adopt, first=None if first is None else (
        first.ops, [op for op, _ in first.failed]))
    # Only now what the table's first programming does not need: the checkers (httptools,
    # ssl), the control socket, the status stream, the reload path, BGP. Each import is
    # file access, and in an emulated VM over a shared filesystem that is most of start-up.
    from conf.load import reload as reload_config
    from daemonlib.control import Server
    from daemonlib.runtime import publish_stream

    from .ctl_lvs import LvsControl
    from .health import Health

    health = Health(lvs)
    link = None
    if lvs.cfg.bgp_speaker is not None:  # the speaker child announces what the pools want
        from .bgp.link import SpeakerLink

        link = SpeakerLink(args.runtime_dir)
        lvs.on_quorum = lambda: link.update(bgp_wants(lvs))
        link.update(bgp_wants(lvs))
        link.start()
    health.start()
    log.info("Startup complete")
    bundle.drop()  # what start-up imports is in: the bundle's memory goes
    gc.enable()  # off since the start (cli.daemon)
    reloads = 0
    reloading = False

    async def status() -> dict[str, object]:
        return {**await lvs_status(lvs, health), "reloads": reloads}

    publisher = asyncio.ensure_future(publish_stream(
        args.runtime_dir, "lvs.json",
        lambda: status_text(lvs, health, reloads, lambda: reloading)))
    state_file = os.path.join(args.runtime_dir, "overrides.json")
    control = LvsControl(lvs, status, args, state_file)
    if adopt:
        await control.restore()
    else:  # a fresh daemon starts from the config alone
        with contextlib.suppress(OSError):
            os.unlink(state_file)
    server = Server(args.runtime_dir, "lvs", control.handle)
    await server.start()
    # the first reload reads again only the blocks that changed since the start-up load
    await asyncio.to_thread(incremental.prime)

    async def reload() -> None:
        nonlocal reloads, reloading
        log.info("Reloading")
        reloading = True  # the status publisher stands aside until the new table is in
        # no cyclic collections meanwhile: the two models' objects are reference-counted
        # away, and a full collection over them would hold up the new table
        gc.disable()
        try:
            # read in a worker thread: the loop keeps running the checks meanwhile
            new = await asyncio.to_thread(reload_config, args.config, args.config_id,
                                          args.all_config, log, True)
            if new is not None:
                if link is not None and link.wants is not None:
                    # what the new config no longer announces is withdrawn before it goes
                    from .bgp.core import keep_configured

                    await link.sync(keep_configured(link.wants, new))
                await health.stop()
                await lvs.reload(new)
                if link is not None:
                    link.update(bgp_wants(lvs))
                health.start()
                control.after_reload()
                reloads += 1
        finally:
            reloading = False
            gc.enable()

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


YIELD_EVERY = 20  # virtual servers built between two turns of the loop


async def vs_status(lvs: Lvs, health: Health, paused: Callable[[], bool] = lambda: False
                    ) -> AsyncIterator[dict[str, object]]:
    """Each virtual server with its real servers' health, weights, checkers and the
    kernel's counters, one at a time (read service by service), letting the loop run
    between them so that checks and a reload are not held up by a big status. Raises
    Stale when a reload replaces the config meanwhile, or while `paused`."""
    from checkers.engine import job_status  # after start-up: see run()

    cfg, all_keys, pools = lvs.cfg, lvs.keys, lvs.pools
    jobs = health.engine.jobs if health.engine else []  # in key order: build() adds so
    svc_stats = await lvs.plane.service_stats()
    j = 0
    for vi, (vs, keys, pool) in enumerate(zip(cfg.virtual_servers, all_keys, pools,
                                               strict=True)):
        if vi % YIELD_EVERY == YIELD_EVERY - 1:
            await asyncio.sleep(0)
        dest_stats = [await _dest_stats(lvs, k) for k in keys if k in svc_stats]
        if lvs.cfg is not cfg or paused():
            raise Stale
        checks: dict[int, list[dict[str, object]]] = {}
        while j < len(jobs) and jobs[j].key[0] <= vi:
            if jobs[j].key[0] == vi:
                checks.setdefault(jobs[j].key[1], []).append(job_status(jobs[j]))
            j += 1
        current = lvs.current
        servers = []
        for ri, s in enumerate(pool.servers):
            dk = DestKey(s.rs.address, s.rs.port or 0)
            st = _total([d[dk] for d in dest_stats if dk in d])
            # the weight IPVS has now (None: not in the table), first service of the VS
            have = next((current[k][1].get(dk) for k in keys if k in current), None)
            servers.append({"name": rs_name(vs, s.rs), "address": s.rs.address,
                            "port": s.rs.port or 0, "alive": s.alive, "weight": s.weight,
                            "configured_weight": s.rs.weight,
                            "effective_weight": None if have is None else have.weight,
                            "override": s.override.view() if s.override else None,
                            "activeconns": st.get("activeconns", 0),
                            "inactconns": st.get("inactconns", 0),
                            "checkers": checks.get(ri, []), "stats": st})
        yield {"name": vs.key, "protocol": vs.protocol, "address": vs.address,
               "port": vs.port, "fwmark": vs.fwmark, "group": vs.group,
               "lb_algo": vs.lb_algo, "lb_kind": vs.lb_kind, "quorum_up": pool.quorum_up,
               "stats": _total([svc_stats[k] for k in keys if k in svc_stats]),
               "real_servers": servers}


async def _dest_stats(lvs: Lvs, key: SvcKey) -> dict[DestKey, dict[str, int]]:
    try:
        return await lvs.plane.dest_stats(key)
    except OSError:  # the service went away since the services were read
        return {}


async def lvs_status(lvs: Lvs, health: Health) -> dict[str, object]:
    """The whole status as one document (a control request)."""
    while True:
        try:
            out = [v async for v in vs_status(lvs, health)]
        except Stale:  # a reload replaced the config meanwhile: the new one, whole
            continue
        return {"virtual_servers": out, "dry_run": lvs.plane.dry_run, "mail": _mail(lvs)}


def _mail(lvs: Lvs) -> dict[str, int] | None:
    """The checker alerts' counters (None: no mail configured: no smtp_server or no
    notification_email)."""
    return lvs.mailer.counts() if lvs.mailer is not None else None


async def status_text(lvs: Lvs, health: Health, reloads: int,
                      paused: Callable[[], bool] = lambda: False) -> AsyncIterator[str]:
    """lvs_status plus `reloads` as JSON text (json.dumps's own spacing), a virtual
    server at a time."""
    import json

    yield '{"virtual_servers": ['
    sep = ""
    async for v in vs_status(lvs, health, paused):
        yield sep + json.dumps(v)
        sep = ", "
    yield (f'], "dry_run": {json.dumps(lvs.plane.dry_run)}, "mail": {json.dumps(_mail(lvs))}, '
           f'"reloads": {reloads}}}')
