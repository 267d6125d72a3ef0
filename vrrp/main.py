"""`director -P`: the VRRP side in the foreground (the watchdog wraps it later)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from conf.load import reload
from conf.model import Config
from daemonlib.control import Server
from daemonlib.runtime import Signals, publish

from . import dumps
from .control import VrrpControl
from .daemon import VrrpDaemon

log = logging.getLogger("director.vrrp")


async def run(args: argparse.Namespace, cfg: Config, adopt: bool = False) -> int:
    daemon = VrrpDaemon(cfg, keep_on_stop=args.dont_release_vrrp)
    signals = Signals()
    loop = asyncio.get_running_loop()
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
    await daemon.start(adopt=adopt)
    log.info("VRRP started: %d instances", len(daemon.routers))

    async def status() -> dict[str, object]:
        return daemon.status()

    publisher = asyncio.ensure_future(publish(args.runtime_dir, "vrrp.json", status))
    reloads = 0
    control = VrrpControl(lambda: daemon, lambda: {**daemon.status(), "reloads": reloads},
                          args)
    server = Server(args.runtime_dir, "vrrp", control.handle)
    await server.start()

    async def reload_vrrp() -> None:
        nonlocal daemon, reloads
        new = reload(args.config, args.config_id, args.all_config, log)
        if new is not None:
            log.info("Reloading VRRP configuration")
            previous = await daemon.handover()
            fresh = VrrpDaemon(new, keep_on_stop=args.dont_release_vrrp, addrs=daemon.addrs,
                               fifos=daemon.fifos, fw=daemon.firewall, before=daemon.cfg)
            await fresh.start(previous=previous)
            for fifo in daemon.fifos:  # the dropped instances have said STOP in them
                if fifo not in fresh.fifos:
                    fifo.close()
            daemon = fresh
            reloads += 1

    await signals.serve(reload_vrrp)
    log.info("Stopping")
    await server.close()
    publisher.cancel()
    await daemon.stop()
    return 0
