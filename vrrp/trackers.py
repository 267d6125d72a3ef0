"""Trackers: vrrp_script, track_interface, track_file, vrrp_track_process.

Each tracker holds a state (`up`, or a `value` for files) and calls its listeners when
it changes; `contribution` (pure) turns a state and the weight the instance gives it
into a priority delta or a fault, with keepalived's arithmetic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable

from conf.model import TrackFileDef, TrackProcess, VrrpScript
from daemonlib import safefile
from daemonlib.scripts import run_script
from daemonlib.trackfile import read_file_value

log = logging.getLogger("director.vrrp")

Listener = Callable[[], None]
RTMGRP_LINK = 1


def contribution(up: bool, weight: int, reverse: bool) -> tuple[int, bool]:
    """(priority delta, fault) of an up/down tracker: weight 0 means down is a fault;
    a positive weight is added while up, a negative one while down; `reverse` turns
    the weight round (so `weight 10 reverse` takes 10 off while down)."""
    if weight == 0:
        return 0, not up
    w = -weight if reverse else weight
    return (w if (up if w > 0 else not up) else 0), False


class Tracker:
    kind = ""

    def __init__(self, name: str) -> None:
        self.name = name
        self.up = True
        self.value = 0
        self.listeners: list[Listener] = []

    def _set(self, up: bool, value: int = 0) -> None:
        if (up, value) == (self.up, self.value):
            return
        self.up, self.value = up, value
        for listener in self.listeners:
            listener()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


class ScriptTracker(Tracker):
    kind = "script"

    def __init__(self, spec: VrrpScript) -> None:
        super().__init__(spec.name)
        self.spec = spec
        self.up = not spec.init_fail
        self._streak = 0  # consecutive results against the current state
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.spec.script is None:
            return
        self._task = asyncio.ensure_future(self._loop())

    async def _loop(self) -> None:
        assert self.spec.script is not None
        interval = self.spec.interval
        timeout = self.spec.timeout or interval
        while True:
            rc = await run_script(self.spec.script, timeout=timeout,
                                  what=f"VRRP_Script({self.name})", quiet=True)
            self.result(rc == 0)
            await asyncio.sleep(interval)

    def result(self, ok: bool) -> None:
        """One run's outcome: `rise` successes in a row bring it up, `fall` failures down."""
        if ok == self.up:
            self._streak = 0
            return
        self._streak += 1
        if self._streak >= (self.spec.rise if ok else self.spec.fall):
            self._streak = 0
            log.info("VRRP_Script(%s) %s", self.name, "succeeded" if ok else "failed")
            self._set(ok)

    def stop(self) -> None:
        if self._task:
            self._task.cancel()


class InterfaceTracker(Tracker):
    kind = "interface"

    def __init__(self, ifname: str, link_up: Callable[[str], bool]) -> None:
        super().__init__(ifname)
        self.link_up = link_up
        self.up = link_up(ifname)

    def poll(self) -> None:
        up = self.link_up(self.name)
        if up != self.up:
            log.info("Netlink reports %s %s", self.name, "up" if up else "down")
        self._set(up)


class FileTracker(Tracker):
    kind = "file"

    def __init__(self, spec: TrackFileDef) -> None:
        super().__init__(spec.name)
        self.spec = spec
        if spec.file and spec.init_file and (spec.init_overwrite
                                             or not os.path.exists(spec.file)):
            try:  # as keepalived: 0600, never through a link
                safefile.write_atomic(spec.file, f"{spec.init_value}\n", 0o600)
            except OSError as e:
                log.error("track_file %s: cannot create %s: %s", self.name, spec.file,
                          e.strerror or e)
        self.value = self.read()

    def read(self) -> int:
        return read_file_value(self.spec.file)

    def poll(self) -> None:
        self._set(True, self.read())


class ProcessTracker(Tracker):
    kind = "process"

    def __init__(self, spec: TrackProcess) -> None:
        super().__init__(spec.name)
        self.spec = spec
        self.up = False

    def matches(self, comm: str, argv: list[str]) -> bool:
        s = self.spec
        name = argv[0] if (s.full_command and argv) else comm
        if s.process is None or (name != s.process and os.path.basename(name) != s.process):
            return False
        if s.parameters is None:
            return True
        params = " ".join(argv[1:])
        if s.param_match == "initial":
            return params.startswith(s.parameters)
        if s.param_match == "partial":
            return s.parameters in params
        return params == s.parameters

    def count(self, procs: list[tuple[str, list[str]]]) -> None:
        n = sum(1 for comm, argv in procs if self.matches(comm, argv))
        hi = self.spec.quorum_max if self.spec.quorum_max is not None else 1 << 30
        self._set(self.spec.quorum <= n <= hi)


def list_processes() -> list[tuple[str, list[str]]]:
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        out.append((comm, argv))
    return out


class Trackers:
    """All trackers of the VRRP side, by kind and name, and the loops that feed them."""

    def __init__(self, link_up: Callable[[str], bool]) -> None:
        self.link_up = link_up
        self.scripts: dict[str, ScriptTracker] = {}
        self.files: dict[str, FileTracker] = {}
        self.processes: dict[str, ProcessTracker] = {}
        self.interfaces: dict[str, InterfaceTracker] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._nl: socket.socket | None = None

    def interface(self, ifname: str) -> InterfaceTracker:
        if ifname not in self.interfaces:
            self.interfaces[ifname] = InterfaceTracker(ifname, self.link_up)
        return self.interfaces[ifname]

    def start(self) -> None:
        for t in self.scripts.values():
            t.start()
        loop = asyncio.get_running_loop()
        if self.interfaces:
            # link changes arrive as rtnetlink multicast; any message re-reads the flags
            self._nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
            self._nl.bind((0, RTMGRP_LINK))
            self._nl.setblocking(False)
            loop.add_reader(self._nl.fileno(), self._link_event)
        if self.files or self.processes:
            self._poll_once()  # instances start from the real state, not a default
            self._tasks.append(asyncio.ensure_future(self._poll()))

    def _link_event(self) -> None:
        assert self._nl is not None
        with contextlib.suppress(BlockingIOError):
            while self._nl.recv(65536):
                pass
        for t in self.interfaces.values():
            t.poll()

    def _poll_once(self) -> None:
        for f in self.files.values():
            f.poll()
        if self.processes:
            procs = list_processes()
            for p in self.processes.values():
                p.count(procs)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self._poll_once()

    def stop(self) -> None:
        for t in self.scripts.values():
            t.stop()
        for task in self._tasks:
            task.cancel()
        if self._nl is not None:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().remove_reader(self._nl.fileno())
            self._nl.close()
            self._nl = None
