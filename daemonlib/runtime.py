"""Each child publishes its live state as JSON in the runtime directory, once a second
and atomically; the status endpoint (another process) reads it. A slow scrape can
therefore never hold up a VRRP advert or a check."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable

from . import safefile

TYPE_CHECKING = False  # (typing itself is not imported at run time)
if TYPE_CHECKING:
    from typing import Any

log = logging.getLogger("director")


def write_json(path: str, data: Any) -> None:
    import json  # not at import: Signals is wanted before a child's first IPVS op, json not

    safefile.write_atomic(path, json.dumps(data), 0o600)


class Stale(Exception):
    """Raised by a status stream whose state changed under it (a reload): that round's
    file is dropped, the next round writes a whole one."""


async def publish(directory: str, name: str,
                  producer: Callable[[], Awaitable[Any]], interval: float = 1.0) -> None:
    async def write(path: str) -> None:
        write_json(path, await producer())

    await _every(directory, name, write, interval)


async def publish_stream(directory: str, name: str, chunks: Callable[[], AsyncIterator[str]],
                         interval: float = 1.0) -> None:
    """As publish, but the JSON text comes in pieces and goes to the file as it comes:
    a status of 10,000 real servers is never whole in memory (a Python process keeps
    the high-water mark of its heap), and the producer may let the loop run between
    pieces."""

    async def write(path: str) -> None:
        f = safefile.AtomicFile(path, 0o600)
        try:
            buf: list[str] = []
            size = 0
            async for piece in chunks():
                buf.append(piece)
                size += len(piece)
                if size >= 1 << 16:
                    f.write("".join(buf).encode())
                    buf, size = [], 0
            f.write("".join(buf).encode())
        except BaseException:
            f.abort()
            raise
        f.commit()

    await _every(directory, name, write, interval)


async def _every(directory: str, name: str, write: Callable[[str], Awaitable[None]],
                 interval: float) -> None:
    path = os.path.join(directory, name)
    try:  # private when we make it; an existing one is checked at each write
        os.close(safefile.open_dir(directory, create=True, mode=0o700))
    except OSError as e:
        log.error("runtime directory %s: %s; no live status", directory, e.strerror or e)
        return
    warned = False
    while True:
        try:
            await write(path)
            warned = False
        except Stale:
            pass
        except OSError as e:
            if not warned:
                log.error("writing %s: %s", path, e.strerror or e)
                warned = True
        await asyncio.sleep(interval)


class Signals:
    """TERM/INT stop and HUP reload for a child's loop. Installed before the child
    programs anything, so a TERM that arrives mid-start still ends in a clean stop."""

    def __init__(self) -> None:
        import signal

        self.stop = asyncio.Event()
        self.reload = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stop.set)
        loop.add_signal_handler(signal.SIGINT, self.stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload.set)

    async def serve(self, on_reload: Callable[[], Awaitable[None]]) -> None:
        """Until TERM/INT; each HUP runs `on_reload`."""
        while not self.stop.is_set():
            waiters = {asyncio.ensure_future(self.stop.wait()),
                       asyncio.ensure_future(self.reload.wait())}
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()
            if self.reload.is_set() and not self.stop.is_set():
                self.reload.clear()
                await on_reload()
