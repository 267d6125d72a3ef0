"""The LVS child's side of the speaker channel: it sends the whole wanted state (never a
delta) whenever it changes and whenever it (re)connects, so a restarted speaker, or a
restarted LVS child, converges on the same announcements without either keeping a log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time

from .core import Want

log = logging.getLogger("director.bgp")
SOCKET = "bgp.sock"  # in the runtime directory; the speaker listens


class SpeakerLink:
    def __init__(self, runtime_dir: str) -> None:
        self.path = os.path.join(runtime_dir, SOCKET)
        self.wants: tuple[Want, ...] | None = None
        # above any number an earlier LVS child used, so a speaker's answer to the old
        # child never confirms a state of this one
        self.seq = time.time_ns() // 1000
        self.acked = 0
        self._changed = asyncio.Event()
        self._acked = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    def update(self, wants: tuple[Want, ...]) -> None:
        """The new wanted state; sent at once if it changed."""
        if wants == self.wants:
            return
        self.wants = wants
        self.seq += 1
        self._changed.set()

    async def sync(self, wants: tuple[Want, ...], timeout: float = 10.0) -> bool:
        """Send and wait until the speaker has applied it (a reload withdraws the
        services it removes before it removes them); False after `timeout`."""
        self.update(wants)
        seq = self.seq
        try:
            async with asyncio.timeout(timeout):
                async with self._acked:
                    await self._acked.wait_for(lambda: self.acked >= seq)
            return True
        except TimeoutError:
            log.warning("BGP: the speaker did not confirm the new announcements within "
                        "%g s; going on", timeout)
            return False

    async def _run(self) -> None:
        warned = False
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(self.path)
            except OSError as e:
                if not warned:
                    log.info("BGP: speaker not reachable yet (%s); retrying", e.strerror or e)
                    warned = True
                await asyncio.sleep(0.2)
                continue
            warned = False
            log.info("BGP: connected to the speaker")
            self._changed.set()  # (re)connected: the whole state again
            reading = asyncio.ensure_future(self._read(reader))
            try:
                while not reading.done():
                    waiter = asyncio.ensure_future(self._changed.wait())
                    await asyncio.wait({waiter, reading}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    if self._changed.is_set() and self.wants is not None:
                        self._changed.clear()
                        msg = {"seq": self.seq, "wants": [w.to_json() for w in self.wants]}
                        writer.write(json.dumps(msg).encode() + b"\n")
                        await writer.drain()
            except ConnectionError:
                pass
            finally:
                reading.cancel()
                writer.close()
            log.warning("BGP: lost the speaker; reconnecting")
            await asyncio.sleep(0.2)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        async for raw in reader:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                seq = int(json.loads(raw)["seq"])
                async with self._acked:
                    self.acked = max(self.acked, seq)
                    self._acked.notify_all()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
