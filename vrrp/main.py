"""`director -P`: the VRRP side in the foreground (the watchdog wraps it later)."""

from __future__ import annotations

import asyncio
import logging
import signal

from conf import load
from director.runtime import publish

from . import dumps
from .daemon import VrrpDaemon

log = logging.getLogger("director.vrrp")


def reload_config(args):  # type: ignore[no-untyped-def]
    """The file read again; None (and the reasons logged) if it has errors."""
    loaded = load(args.config, config_id=args.config_id, all_config=args.all_config)
    for d in loaded.diags.items:
        (log.error if d.severity == "error" else log.warning)("%s", d)
    if not loaded.ok:
        log.error("Configuration has errors: the running configuration is kept")
        return None
    return loaded.config


async def run(args, cfg, adopt: bool = False) -> int:  # type: ignore[no-untyped-def]
    daemon = VrrpDaemon(cfg, keep_on_stop=args.dont_release_vrrp)
    stop = asyncio.Event()
    reload_wanted = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload_wanted.set)
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

    async def status():  # type: ignore[no-untyped-def]
        return daemon.status()

    publisher = asyncio.ensure_future(publish(args.runtime_dir, "vrrp.json", status))
    while not stop.is_set():
        waiters = {asyncio.ensure_future(stop.wait()),
                   asyncio.ensure_future(reload_wanted.wait())}
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()
        if reload_wanted.is_set() and not stop.is_set():
            reload_wanted.clear()
            new = reload_config(args)
            if new is not None:
                log.info("Reloading VRRP configuration")
                previous = await daemon.handover()
                fresh = VrrpDaemon(new, keep_on_stop=args.dont_release_vrrp, addrs=daemon.addrs)
                await fresh.start(previous=previous)
                for fifo in daemon.fifos:  # the dropped instances have said STOP in them
                    fifo.close()
                daemon = fresh
    log.info("Stopping")
    publisher.cancel()
    await daemon.stop()
    return 0
