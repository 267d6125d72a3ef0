"""The notify FIFO: one line per event, never blocking the writer; its optional
`*notify_fifo_script` reads it (started with the FIFO's path as its last argument)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from conf.model import Script

from . import safefile
from .scripts import run_as_of, run_script

log = logging.getLogger("director.fifo")


class Fifo:
    """A notify FIFO, opened at the first line: made 0644 if missing (as keepalived),
    never through a link, refused when it is not a FIFO of ours (or the script's user's).
    A full pipe drops the line, not us."""

    def __init__(self, path: str, script: Script | None = None) -> None:
        self.path = path
        self.script = script
        self.fd: int | None = None
        self.made = False
        self.failed = False
        self.full = False
        self._task: asyncio.Task[int | None] | None = None

    def open(self) -> bool:
        if self.fd is not None or self.failed:
            return self.fd is not None
        run_as = run_as_of(self.script) if self.script else None
        owner = (run_as.uid, run_as.gid) if run_as else None
        try:
            self.fd, self.made = safefile.make_fifo(self.path, 0o644, owner)
        except OSError as e:
            log.error("notify FIFO %s: %s", self.path, e.strerror or e)
            self.failed = True  # once: not one error per event
            return False
        if self.script is not None:
            self._task = asyncio.get_running_loop().create_task(run_script(
                self.script, (self.path,), timeout=None, what="notify_fifo"))
        return True

    def write(self, line: str) -> None:
        if not self.open():
            return
        assert self.fd is not None
        try:
            os.write(self.fd, (line + "\n").encode())
            self.full = False
        except BlockingIOError:
            if not self.full:  # once per run of drops
                log.warning("notify FIFO %s is full (nobody reading?); dropping lines",
                            self.path)
            self.full = True
        except OSError as e:
            log.warning("notify FIFO %s: %s; reopening", self.path, e.strerror)
            self.close()

    def close(self) -> None:
        """Unlink first what we made (a script looping on reopen cannot come back), then
        close: the script sees end of file; it is stopped if still running."""
        if self.made:
            with contextlib.suppress(OSError):
                safefile.remove(self.path)
            self.made = False
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.failed = False
