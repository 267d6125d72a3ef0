"""The parent process of `director -f FILE`: a VRRP child and a checker child, restarted
when they die, with keepalived's backoff.

The parent reads and validates the config once, forks the children (each runs its own
asyncio loop on the parsed config it inherits), then lets go of the model: a parent that
only waits for signals keeps no copy of 100k lines' worth of objects. A child started
later (a respawn) reads the file itself. Signals: TERM/INT stop the children and wait
for them; HUP is passed on at once (each child validates the file and keeps its running
config if it has errors, so a reload costs one parse, not two in a row);
USR1/USR2/the JSON signal are passed on (the children write the dumps). A restarted
child is told so (`adopt`): it takes over the kernel's state instead of resetting it.
The parent has no event loop: it waits for signals with sigtimedwait, so nothing it
does can delay a child.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

from daemonlib import safefile

log = logging.getLogger("director")

PR_SET_PDEATHSIG = 1
FORWARDED = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGRTMIN + 2)
WATCHED = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD, *FORWARDED}
MAX_BACKOFF = 60.0
STABLE_AFTER = 60.0  # a child that ran this long is restarted at once


def next_delay(ran_for: float, previous: float) -> float:
    """keepalived's respawn rule: at once after a long run, else 1, 2, 4 ... 60 s."""
    if ran_for >= STABLE_AFTER:
        return 0.0
    return min(MAX_BACKOFF, previous * 2) if previous else 1.0


STOP_FIRST_TIMEOUT = 30.0  # the others are stopped after this even if a first one hangs


class Child:
    def __init__(self, name: str, run: Callable[[bool], int], pidfile: str | None,
                 stop_first: bool = False) -> None:
        self.name = name
        # stopped before the others, which wait for it to exit (the BGP speaker withdraws
        # the VIPs while IPVS still serves)
        self.stop_first = stop_first
        self.run = run
        self.pidfile = pidfile
        self.pid = 0
        self.started = 0.0
        self.delay = 0.0
        self.restart_at: float | None = None
        self.starts = 0

    def spawn(self) -> None:
        adopt = self.starts > 0
        self.starts += 1
        pid = os.fork()
        if pid == 0:  # the child
            rc = 2
            try:
                signal.pthread_sigmask(signal.SIG_SETMASK, set())
                for sig in WATCHED:
                    signal.signal(sig, signal.SIG_DFL)
                libc = ctypes.CDLL(None, use_errno=True)
                libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
                if os.getppid() == 1:  # the parent died before prctl
                    os._exit(0)
                rc = self.run(adopt)
            except Exception as e:
                log.error("%s child: internal error %s: %s", self.name, type(e).__name__, e)
            finally:
                logging.shutdown()
                os._exit(rc)
        self.pid = pid
        self.started = time.monotonic()
        self.restart_at = None
        _write_pid(self.pidfile, pid)
        log.info("Starting %s child process, pid=%d", self.name, pid)


def _write_pid(path: str | None, pid: int) -> None:
    if path:
        try:  # a planted link or someone else's file there is refused, never followed
            safefile.write_atomic(path, f"{pid}\n", 0o644)
        except OSError as e:
            log.error("pid file %s not written: %s", path, e.strerror or e)


def sd_notify(message: str) -> None:
    """systemd's Type=notify protocol; nothing when not started by systemd."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    import socket

    if path.startswith("@"):
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(message.encode(), path)
    except OSError as e:
        log.warning("sd_notify: %s", e.strerror)


def supervise(children: list[Child], respawn: bool, pidfile: str | None,
              started: Callable[[], None] = lambda: None) -> int:
    """`started` runs once every child has been forked the first time."""
    signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)
    _write_pid(pidfile, os.getpid())
    for c in children:
        c.spawn()
    started()
    sd_notify(f"READY=1\nMAINPID={os.getpid()}\nSTATUS=running {len(children)} children")
    stopping = False
    later: list[Child] = []  # stopped once the stop_first children have exited
    later_deadline = 0.0
    while True:
        now = time.monotonic()
        waits = [c.restart_at - now for c in children if c.restart_at is not None]
        if later:
            waits.append(later_deadline - now)
        timeout = max(0.0, min(waits)) if waits else 3600.0
        info = signal.sigtimedwait(WATCHED, timeout)
        now = time.monotonic()
        if later and (now >= later_deadline or
                      all(c.pid == 0 for c in children if c.stop_first)):
            _signal_all(later, signal.SIGTERM)
            later = []
        if info is None:
            for c in children:
                if c.restart_at is not None and now >= c.restart_at and not stopping:
                    c.spawn()
            continue
        sig = info.si_signo
        if sig in (signal.SIGTERM, signal.SIGINT) and not stopping:
            stopping = True
            log.info("Stopping")
            sd_notify("STOPPING=1")
            first = [c for c in children if c.stop_first and c.pid]
            later = [c for c in children if c not in first]
            later_deadline = now + STOP_FIRST_TIMEOUT
            _signal_all(first, signal.SIGTERM)
            if not first:
                _signal_all(later, signal.SIGTERM)
                later = []
        elif sig == signal.SIGHUP and not stopping:
            log.info("Reloading")
            usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            sd_notify(f"RELOADING=1\nMONOTONIC_USEC={usec}")
            _signal_all(children, signal.SIGHUP)  # each validates before it changes anything
            sd_notify("READY=1")
        elif sig in FORWARDED:
            _signal_all(children, sig)
        elif sig == signal.SIGCHLD:
            _reap(children, respawn and not stopping, now)
            if later and all(c.pid == 0 for c in children if c.stop_first):
                _signal_all(later, signal.SIGTERM)
                later = []
            if not respawn and not stopping and any(c.pid == 0 for c in children):
                log.error("A child exited and respawning is off (-R): stopping")
                stopping = True
                _signal_all(children, signal.SIGTERM)
        if stopping and all(c.pid == 0 for c in children):
            for path in (pidfile, *(c.pidfile for c in children)):
                if path:
                    safefile.remove(path)
            log.info("Stopped")
            return 0


def _signal_all(children: list[Child], sig: int) -> None:
    for c in children:
        if c.pid:
            try:
                os.kill(c.pid, sig)
            except ProcessLookupError:
                pass


def _reap(children: list[Child], respawn: bool, now: float) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        for c in children:
            if c.pid != pid:
                continue
            c.pid = 0
            ran = now - c.started
            how = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
                   else f"status {os.waitstatus_to_exitcode(status)}")
            if not respawn:
                log.info("%s child %d exited (%s)", c.name, pid, how)
                continue
            c.delay = next_delay(ran, c.delay)
            c.restart_at = now + c.delay
            log.error("%s child %d exited (%s) after %.1f s; restarting in %g s", c.name, pid,
                      how, ran, c.delay)


class _Model:
    """The parsed config, held until the first children have it."""

    def __init__(self, cfg, load: Callable[[], object]) -> None:  # type: ignore[no-untyped-def]
        self.cfg = cfg
        self.load = load

    def take(self, seed: bool = False):  # type: ignore[no-untyped-def]
        """In a child: the inherited model, or (a respawn) the file read again; the
        holder lets go of it, so that the child's next reload frees it. `seed`: the
        child keeps the start-up load's seed (conf/incremental.py: the checker child)."""
        if not seed:
            _drop_seed()
        cfg, self.cfg = self.cfg, None
        return cfg if cfg is not None else self.load()

    def release(self) -> None:
        self.cfg = None
        _drop_seed()
        gc.unfreeze()
        gc.collect()
        try:  # the parse's big blocks went to malloc's heap: give its free pages back
            ctypes.CDLL(None).malloc_trim(0)
        except (OSError, AttributeError):  # not glibc
            pass


def _drop_seed() -> None:
    incremental = sys.modules.get("conf.incremental")
    if incremental is not None:
        incremental.drop_seed()


def main(args, holder: list, load: Callable[[], object]) -> int:  # type: ignore[no-untyped-def]
    """Both sides (or the one -P / -C asks for) under the watchdog. `holder` is a list
    with the parsed config, taken out so that no caller's frame keeps it; `load` reads
    the config again (None if it has errors, which it logs), for a child started later."""
    import asyncio

    from daemonlib import sched

    model = _Model(holder.pop(), load)
    cfg = model.cfg

    def side(run_side: Callable[..., object], tune: Callable[[object], None],
             seed: bool = False) -> Callable[[bool], int]:
        def run(adopt: bool) -> int:
            box = [model.take(seed)]
            if box[0] is None:
                log.error("the configuration has errors: the child does not start")
                return 4
            tune(box[0].global_defs)
            return asyncio.run(run_side(args, box.pop(), adopt=adopt))  # type: ignore[arg-type]

        return run

    def vrrp(adopt: bool) -> int:
        from vrrp.main import run

        def tune(g) -> None:  # type: ignore[no-untyped-def]
            sched.apply("VRRP", g.vrrp_priority, g.vrrp_rt_priority, g.vrrp_rlimit_rttime,
                        g.vrrp_no_swap, g.vrrp_cpu_affinity)

        return side(run, tune)(adopt)

    def checker(adopt: bool) -> int:
        from .lvs_main import run

        def tune(g) -> None:  # type: ignore[no-untyped-def]
            sched.apply("Healthcheck", g.checker_priority, g.checker_rt_priority,
                        g.checker_rlimit_rttime, g.checker_no_swap, g.checker_cpu_affinity)

        return side(run, tune, seed=True)(adopt)

    children = []
    if cfg.vrrp_instances and not args.check:
        children.append(Child("VRRP", vrrp, args.vrrp_pid or "/run/vrrp.pid"))
    if cfg.virtual_servers and not args.vrrp:
        children.append(Child("Healthcheck", checker,
                              args.checkers_pid or "/run/checkers.pid"))
        if cfg.bgp_speaker is not None:

            def bgp(adopt: bool) -> int:
                from .bgp.speaker import run

                return side(run, lambda g: None)(adopt)

            children.append(Child("BGP", bgp, None, stop_first=True))
    if args.metrics:
        from .metrics import parse_listen

        try:
            parse_listen(args.metrics)
        except ValueError:
            log.error("--metrics %s: want [ADDR:]PORT", args.metrics)
            return 2

        def status(_adopt: bool) -> int:
            from .metrics import serve

            _drop_seed()

            return asyncio.run(serve(args.metrics, args.runtime_dir))

        children.append(Child("Status", status, None))
    del cfg  # only `model` holds it now
    if not children:
        log.warning("nothing to run: the configuration has no vrrp_instance and no "
                    "virtual_server")
    for c in children:
        if c.pidfile:
            os.makedirs(os.path.dirname(c.pidfile) or ".", exist_ok=True)
    pidfile = args.pid or "/run/keepalived.pid"
    os.makedirs(os.path.dirname(pidfile) or ".", exist_ok=True)
    sys.stdout.flush()
    # The model's objects go to the collector's permanent generation before the forks: a
    # child's collections then never write to the pages it shares with the others.
    gc.freeze()
    return supervise(children, not args.dont_respawn, pidfile, started=model.release)
