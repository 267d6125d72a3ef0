"""The parent process of `director -f FILE`: a VRRP child and a checker child, restarted
when they die, with keepalived's backoff.

The parent reads and validates the config once and forks the children (each runs its own
asyncio loop on the parsed config it inherits). Then it re-executes itself (same pid, same
command line, its children and its blocked, pending signals kept across execve): the
process that goes on waiting for signals never imported the parser or the model, and
holds only what a watchdog needs (1000 x 10 config: 7.5 MiB PSS, was 18 with what the
parse left behind). A child started later (a respawn) reads the file itself. If execve
fails, the first process lets go of the model and supervises on. Signals: TERM/INT stop
the children and wait for them; HUP is passed on at once (each child validates the file
and keeps its running config if it has errors, so a reload costs one parse, not two in a
row); USR1/USR2/the JSON signal are passed on (the children write the dumps). A
restarted child is told so (`adopt`): it takes over the kernel's state instead of
resetting it. The parent has no event loop: it waits for signals with sigtimedwait, so
nothing it does can delay a child.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Callable

from daemonlib import safefile
from daemonlib.libc import die_with_parent
from daemonlib.memory import trim

from . import bundle
from .cli import WATCHDOG_STATE
from .prefork import FORWARDED, WATCHED, Forked

TYPE_CHECKING = False  # (typing itself is not imported at run time)
if TYPE_CHECKING:
    import asyncio

    from conf.model import Config

log = logging.getLogger("director")

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
                 stop_first: bool = False, unblocks: bool = False) -> None:
        self.name = name
        # the child unblocks the watched signals itself, once its handlers are in (the
        # checker child: lvs_main.run); others at once
        self.unblocks = unblocks
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
                signal.pthread_sigmask(signal.SIG_SETMASK, WATCHED if self.unblocks else set())
                for sig in WATCHED:
                    signal.signal(sig, signal.SIG_DFL)
                die_with_parent()
                if os.getppid() == 1:  # the parent died before prctl
                    os._exit(0)
                rc = self.run(adopt)
            except Exception as e:
                log.error("%s child: internal error %s: %s", self.name, type(e).__name__, e)
            finally:
                logging.shutdown()
                os._exit(rc)
        self.took(pid, time.monotonic())

    def took(self, pid: int, started: float) -> None:
        """`pid` runs as this child (forked by spawn, or before: prefork)."""
        self.pid = pid
        self.started = started
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
              started: Callable[[], None] = lambda: None, resumed: bool = False,
              forked: dict[str, Forked] | None = None) -> int:
    """`started` runs once every child has been forked the first time (and systemd told);
    `resumed`: the children run already (forked before the parent re-executed itself);
    `forked`: those forked before the watchdog (prefork), by name."""
    signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)
    if not resumed:
        _write_pid(pidfile, os.getpid())
        for c in children:
            early = (forked or {}).get(c.name)
            if early is not None:
                c.starts = 1
                c.took(early.pid, early.started)
            else:
                c.spawn()
        sd_notify(f"READY=1\nMAINPID={os.getpid()}\nSTATUS=running {len(children)} children")
        started()
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
        bundle.drop()  # the parent imports nothing more of note; a respawn imports normally
        gc.enable()  # off since the start (cli.daemon)
        gc.unfreeze()
        trim()


def _drop_seed() -> None:
    incremental = sys.modules.get("conf.incremental")
    if incremental is not None:
        incremental.drop_seed()


STATE_ENV = WATCHDOG_STATE  # the running children, for the re-executed parent


def make_children(args, kinds: tuple[str, ...], model: _Model) -> list[Child]:  # type: ignore[no-untyped-def]
    """The children the config and the options ask for (`kinds`: their names), each
    started from `model` (the inherited config, or the file read again)."""

    def taken(seed: bool) -> list[Config] | None:
        """The child's config in a list (see prefork.fork_checker), or None (said)."""
        cfg = model.take(seed)
        if cfg is None:
            log.error("the configuration has errors: the child does not start")
            return None
        return [cfg]

    def side(run_side: Callable[..., object], tune: Callable[[object], None],
             loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
             ) -> Callable[[bool], int]:
        """A side run on its own event loop (the VRRP child, the BGP speaker; the
        checker child has its own start: prefork.checker_main)."""
        def run(adopt: bool) -> int:
            import asyncio

            box = taken(False)
            if box is None:
                return 4
            tune(box[0].global_defs)
            bundle.drop()
            gc.enable()
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                return runner.run(run_side(args, box.pop(), adopt=adopt))  # type: ignore[arg-type]

        return run

    def vrrp(adopt: bool) -> int:
        from daemonlib import sched
        from daemonlib.loop import new_event_loop
        from vrrp.main import run

        def tune(g) -> None:  # type: ignore[no-untyped-def]
            sched.apply("VRRP", g.vrrp_priority, g.vrrp_rt_priority, g.vrrp_rlimit_rttime,
                        g.vrrp_no_swap, g.vrrp_cpu_affinity)

        # VRRP deadlines to the microsecond, as keepalived's timerfd (daemonlib/loop.py)
        return side(run, tune, loop_factory=new_event_loop)(adopt)

    def checker(adopt: bool) -> int:
        from .prefork import checker_main

        box = taken(True)
        if box is None:
            return 4
        return checker_main(args, box, adopt)  # (lets go of the bundle once started)

    def bgp(adopt: bool) -> int:
        from .bgp.speaker import run

        return side(run, lambda g: None)(adopt)

    def status(_adopt: bool) -> int:
        import asyncio

        from .metrics import serve

        _drop_seed()
        bundle.drop()
        gc.enable()
        return asyncio.run(serve(args.metrics, args.runtime_dir))

    made = {
        "VRRP": lambda: Child("VRRP", vrrp, args.vrrp_pid or "/run/vrrp.pid"),
        "Healthcheck": lambda: Child("Healthcheck", checker,
                                     args.checkers_pid or "/run/checkers.pid", unblocks=True),
        "BGP": lambda: Child("BGP", bgp, None, stop_first=True),
        "Status": lambda: Child("Status", status, None),
    }
    return [made[k]() for k in kinds]


def _state(children: list[Child]) -> str:
    """What the re-executed parent needs of its running children: pid, name, start time
    (CLOCK_MONOTONIC is the system's, the same after execve) and starts."""
    return " ".join([str(os.getpid())] + [f"{c.name}:{c.pid}:{c.started!r}:{c.starts}"
                                          for c in children])


def _reexec(args, children: list[Child], model: _Model) -> None:  # type: ignore[no-untyped-def]
    """Become a fresh watchdog: the same command line in this process, told by STATE_ENV
    that its children run already. What is blocked and pending (a SIGCHLD, a SIGTERM sent
    meanwhile) stays so across execve, and the children are still ours. If execve fails,
    this process lets go of the model and supervises on."""
    env = dict(os.environ)
    env[STATE_ENV] = _state(children)
    stream = getattr(logging.getLogger().handlers[0] if logging.getLogger().handlers else None,
                     "stream", None)
    if args.log_file and stream not in (None, sys.stderr, sys.stdout):
        fd = stream.fileno()  # the -g log file: the children write to it, so keep it
        os.set_inheritable(fd, True)
        env[STATE_ENV] += f" log_fd:{fd}"
    sys.stdout.flush()
    sys.stderr.flush()
    for h in logging.getLogger().handlers:
        h.flush()
    argv = list(getattr(sys, "orig_argv", ()) or ())
    try:
        if not sys.executable or not argv:
            raise OSError("no interpreter path or command line to execute")
        os.execve(sys.executable, argv, env)
    except OSError as e:
        log.warning("watchdog: not re-executed (%s): it keeps running as it is", e)
    model.release()


def resume(args, state: str) -> int | None:  # type: ignore[no-untyped-def]
    """The re-executed parent (STATE_ENV): supervise the children the first run forked.
    None if the state is not ours (another process's environment): start as usual."""
    os.environ.pop(STATE_ENV, None)  # a child started later must not see it
    words = state.split()
    if not words or words[0] != str(os.getpid()):
        return None
    from .cli import setup_logging

    fds = [int(w.split(":")[1]) for w in words[1:] if w.startswith("log_fd:")]
    setup_logging(args, log_fd=fds[0] if fds else None)

    def load():  # type: ignore[no-untyped-def]  # a respawned child reads the file
        from conf.load import reload

        return reload(args.config, args.config_id, args.all_config, log)

    running = [w.split(":") for w in words[1:] if not w.startswith("log_fd:")]
    children = make_children(args, tuple(r[0] for r in running), _Model(None, load))
    for c, (_name, pid, started, starts) in zip(children, running, strict=True):
        c.pid, c.started, c.starts = int(pid), float(started), int(starts)
    pidfile = args.pid or "/run/keepalived.pid"
    bundle.drop()  # what the lean parent imports is in
    log.debug("watchdog re-executed with %d children", len(children))
    return supervise(children, not args.dont_respawn, pidfile, resumed=True)


def main(args, holder: list, load: Callable[[], object],  # type: ignore[no-untyped-def]
         forked: Forked | None = None) -> int:
    """Both sides (or the one -P / -C asks for) under the watchdog. `holder` is a list
    with the parsed config, taken out so that no caller's frame keeps it; `load` reads
    the config again (None if it has errors, which it logs), for a child started later.
    `forked`: the checker child, forked already (prefork)."""
    model = _Model(holder.pop(), load)
    cfg = model.cfg
    kinds = []
    if cfg.vrrp_instances and not args.check:
        kinds.append("VRRP")
    if cfg.virtual_servers and not args.vrrp:
        kinds.append("Healthcheck")
        if cfg.bgp_speaker is not None:
            kinds.append("BGP")
    if args.metrics:
        from .metrics import parse_listen

        try:
            parse_listen(args.metrics)
        except ValueError:
            log.error("--metrics %s: want [ADDR:]PORT", args.metrics)
            return 2
        kinds.append("Status")
    del cfg  # only `model` holds it now
    children = make_children(args, tuple(kinds), model)
    if not children:
        log.warning("nothing to run: the configuration has no vrrp_instance and no "
                    "virtual_server")
    for c in children:
        if c.pidfile:
            os.makedirs(os.path.dirname(c.pidfile) or ".", exist_ok=True)
    pidfile = args.pid or "/run/keepalived.pid"
    os.makedirs(os.path.dirname(pidfile) or ".", exist_ok=True)
    sys.stdout.flush()
    if forked is None:  # (else prefork did both before its fork)
        trim()  # what the parse freed is not carried into the children
        # The model's objects go to the collector's permanent generation before the
        # forks: a child's collections then never write to the pages it shares.
        gc.freeze()
    return supervise(children, not args.dont_respawn, pidfile,
                     started=lambda: _reexec(args, children, model),
                     forked=None if forked is None else {"Healthcheck": forked})
