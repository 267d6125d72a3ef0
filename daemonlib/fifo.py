"""The notify FIFO: one line per event, never blocking the writer."""

from __future__ import annotations

import errno
import logging
import os

log = logging.getLogger("director.fifo")


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
