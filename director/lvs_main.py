"""`director -C`: the checker/LVS side in the foreground (the watchdog comes later).

The health checkers' transitions go through one queue into the LVS core, in the order
they happened, so the IPVS table always follows the latest verdict.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from conf import load

from .dataplane import choose_plane
from .health import Health
from .lvs import Lvs

log = logging.getLogger("director")


async def run(args, cfg, adopt: bool = False) -> int:  # type: ignore[no-untyped-def]
    plane = await choose_plane(args.dry_run)
    lvs = Lvs(cfg, plane, keep_on_stop=args.dont_release_ipvs)
    health = Health(lvs)
    stop = asyncio.Event()
    reload_wanted = asyncio.Event()
    loop = asyncio.get_running_loop()
    # handlers first: a TERM that arrives while the table is being programmed must
    # still end in a clean stop, not in a killed process that leaves it behind
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload_wanted.set)
    await lvs.start(adopt=adopt)
    health.start()
    log.info("Startup complete")
    while not stop.is_set():
        waiter = asyncio.ensure_future(reload_wanted.wait())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopper.cancel()
        if reload_wanted.is_set() and not stop.is_set():
            reload_wanted.clear()
            log.info("Reloading")
            loaded = load(args.config, config_id=args.config_id, all_config=args.all_config)
            for d in loaded.diags.items:
                (log.error if d.severity == "error" else log.warning)("%s", d)
            if not loaded.ok:
                log.error("Configuration has errors: the running configuration is kept")
                continue
            await health.stop()
            await lvs.reload(loaded.config)
            health.start()
    log.info("Stopping")
    await health.stop()
    await lvs.stop()
    plane.close()
    return 0
