"""`director -P`: the VRRP side in the foreground (the watchdog wraps it later)."""

from __future__ import annotations

import asyncio
import logging
import signal

from . import dumps
from .daemon import VrrpDaemon

log = logging.getLogger("director.vrrp")


async def run(args, cfg) -> int:  # type: ignore[no-untyped-def]
    daemon = VrrpDaemon(cfg, keep_on_stop=args.dont_release_vrrp)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    where = args.dump_dir

    def dump(what: str) -> None:
        try:
            if what == "data":
                path = dumps.write(where, "keepalived.data", dumps.data_text(daemon))
            elif what == "stats":
                path = dumps.write(where, "keepalived.stats", dumps.stats_text(daemon.routers))
            else:
                path = dumps.write_json(where, daemon)
            log.info("Wrote %s", path)
        except OSError as e:
            log.error("Writing the %s dump in %s failed: %s", what, where, e.strerror)

    loop.add_signal_handler(signal.SIGUSR1, dump, "data")
    loop.add_signal_handler(signal.SIGUSR2, dump, "stats")
    loop.add_signal_handler(signal.SIGRTMIN + 2, dump, "json")
    await daemon.start()
    log.info("VRRP started: %d instances", len(daemon.routers))
    await stop.wait()
    log.info("Stopping")
    await daemon.stop()
    return 0
