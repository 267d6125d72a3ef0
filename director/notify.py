"""Running notify scripts and writing notify FIFO lines without blocking the loop."""

from __future__ import annotations

import asyncio
import errno
import logging
import os

from conf.model import Script

log = logging.getLogger("director.notify")


async def run_script(script: Script, extra: tuple[str, ...] = (), timeout: float = 30.0,
                     what: str = "notify") -> int | None:
    """Run `script` (argv as keepalived splits it, plus `extra`); return its exit code."""
    argv = list(script.argv) + list(extra)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
    except OSError as e:
        log.error("%s script %s (%s) failed to start: %s", what, argv[0], script.pos,
                  e.strerror)
        return None
    try:
        rc = await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        log.error("%s script %s timed out after %gs; killed", what, argv[0], timeout)
        return None
    if rc != 0:
        log.warning("%s script %s exited with status %s", what, " ".join(argv), rc)
    return rc


class Fifo:
    """A notify FIFO: one line per event; a missing reader drops the line, not us."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None

    def write(self, line: str) -> None:
        if self.fd is None:
            try:
                if not os.path.exists(self.path):
                    os.mkfifo(self.path, 0o600)
                self.fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                if e.errno != errno.ENXIO:  # ENXIO: nobody reads the FIFO yet
                    log.error("notify fifo %s: %s", self.path, e.strerror)
                return
        try:
            os.write(self.fd, (line + "\n").encode())
        except OSError as e:
            log.warning("notify fifo %s: %s; reopening", self.path, e.strerror)
            self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
