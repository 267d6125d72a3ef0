"""The notify FIFO: one line per event, never blocking the writer."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import pwd
import signal
import subprocess

from conf.model import GlobalDefs, Script

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


class FifoScripts:
    """`*notify_fifo_script`: keepalived starts the script once, with the FIFO's name as
    its last argument, so that it reads the events; it creates the FIFO first (and
    removes at exit one it created). Kept across reloads while unchanged."""

    def __init__(self) -> None:
        self.running: dict[tuple[str, str], subprocess.Popen[bytes]] = {}
        self.created: set[str] = set()

    def ensure(self, path: str, script: Script, user: str | None,
               group: str | None = None) -> None:
        key = (path, script.cmd)
        proc = self.running.get(key)
        if proc is not None and proc.poll() is None:
            return
        try:
            if not os.path.exists(path):
                os.mkfifo(path, 0o600)
                self.created.add(path)
        except OSError as e:
            log.error("notify fifo %s: cannot create it: %s", path, e.strerror)
            return
        ids: dict[str, object] = {}
        if user is not None and os.geteuid() == 0:
            try:
                ids = {"user": user, "group": group or pwd.getpwnam(user).pw_gid,
                       "extra_groups": []}
                if path in self.created:
                    os.chown(path, pwd.getpwnam(user).pw_uid, -1)
            except (KeyError, OSError) as e:
                log.error("notify fifo script %s: user %s: %s", script.cmd, user, e)
                return
        try:
            self.running[key] = subprocess.Popen(
                [*script.argv, path], stdin=subprocess.DEVNULL, start_new_session=True,
                **ids)  # type: ignore[call-overload]
        except OSError as e:
            log.error("notify fifo script %s (%s) failed to start: %s", script.argv[0],
                      script.pos, e.strerror)
            return
        log.info("notify fifo script %s started for %s", script.argv[0], path)

    def stop(self) -> None:
        for proc in self.running.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        self.running.clear()
        for path in self.created:
            with contextlib.suppress(OSError):
                os.unlink(path)
        self.created.clear()


def fifo_script_jobs(g: GlobalDefs, side: str, other_side_runs: bool) -> list[tuple[str, Script]]:
    """Which (fifo, script) pairs this child runs, as keepalived shares them out: each side
    its own, and the global notify_fifo_script the checker side's when it runs."""
    jobs = []
    own = (g.vrrp_notify_fifo, g.vrrp_notify_fifo_script) if side == "vrrp" else (
        g.lvs_notify_fifo, g.lvs_notify_fifo_script)
    if own[0] and own[1]:
        jobs.append((own[0], own[1]))
    if g.notify_fifo and g.notify_fifo_script and (side == "lvs" or not other_side_runs):
        jobs.append((g.notify_fifo, g.notify_fifo_script))
    return jobs
