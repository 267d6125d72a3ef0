"""`director -P`: the VRRP side in the foreground (the watchdog wraps it later)."""

from __future__ import annotations

import asyncio
import logging
import signal

from .daemon import VrrpDaemon

log = logging.getLogger("director.vrrp")


async def run(args, cfg) -> int:  # type: ignore[no-untyped-def]
    daemon = VrrpDaemon(cfg, keep_on_stop=args.dont_release_vrrp)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await daemon.start()
    log.info("VRRP started: %d instances", len(daemon.routers))
    await stop.wait()
    log.info("Stopping")
    await daemon.stop()
    return 0
