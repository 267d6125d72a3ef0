"""The checker child forked as soon as the config is parsed, and its start.

`director -f FILE` (or -C) spends its start-up floor on the way from exec to the first
IPVS operation; on the emulated VM each module imported on that way is tens of
milliseconds. So the parent forks the checker child right after the parse, before it
imports logging and the watchdog (the watchdog then takes the child as one it forked:
pid file, `Starting Healthcheck child process` line, respawns), and the child programs
the kernel first (director/first_ipvs.py), then sets up logging, its process settings
and its event loop. The signals the watchdog waits for are blocked before the fork, as
the watchdog blocks them; the checker child keeps them blocked until its event loop has
its handlers (lvs_main.run), so a TERM during its start still ends in a clean stop.

Only os, signal, gc and time here: this module is on that way.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from conf.model import Config

FORWARDED = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGRTMIN + 2)
# how long the parent's start-up waits at most for the checker child's first programming
# (signals sent to the parent meanwhile stay pending: they are blocked until it waits)
READY_WAIT = 3.0
WATCHED = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD, *FORWARDED}


class Forked:
    """The checker child the parent forked before the watchdog: its pid, its start
    (CLOCK_MONOTONIC), and the -g log file both write to (-1: it could not be made,
    stderr instead; None: not logging to a file)."""

    __slots__ = ("pid", "started", "log_fd")

    def __init__(self, pid: int, started: float, log_fd: int | None) -> None:
        self.pid = pid
        self.started = started
        self.log_fd = log_fd


def open_log(args: argparse.Namespace) -> int | None:
    """The -g log file, made once for the parent and the child (each would otherwise
    replace the other's): its descriptor, -1 if refused (said on stderr), None if not
    logging to a file."""
    if not args.log_file or args.log_console or args.dont_fork:
        return None
    from daemonlib import safefile

    try:  # keepalived's -g default is in /tmp: never through a planted link
        return safefile.create(args.log_file)
    except OSError as e:
        why = str(e) if isinstance(e, safefile.Refused) else (
            f"log file {args.log_file}: {e.strerror}")
        print(f"director: {why}; logging to stderr", file=sys.stderr)
        return -1


def fork_checker(args: argparse.Namespace, holder: list[Config]) -> Forked | None:
    """Fork the checker child now if the watchdog would start one and nothing must be
    checked first (--metrics is checked by the watchdog: then it forks all). `holder`:
    the parsed config in a list, taken out in the child (no frame keeps the model
    there: a reload frees it)."""
    cfg = holder[0]
    if not cfg.virtual_servers or args.vrrp or args.metrics:
        return None
    from daemonlib.memory import trim

    # With no VRRP child to start, the parent's own start-up (logging, the watchdog's
    # imports, its re-execution) waits for the checker child's first programming: on
    # two CPUs shared with the rest of the box it would take one from that programming.
    # The child closes its end of the pipe once done (or by dying).
    wait = args.check or not cfg.vrrp_instances
    ready_r, ready_w = os.pipe() if wait else (-1, -1)
    del cfg

    signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)
    log_fd = open_log(args)
    for path in (args.checkers_pid or "/run/checkers.pid", args.pid or "/run/keepalived.pid"):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # What the parse freed is not carried into the children. No collection: the parse
    # makes no cycles, and the start-up's (~900 objects, constant) stay frozen and shared
    # with the child; a full collection is ~3 ms natively, ~0.1 s in the emulated VM, on
    # every start's way to its first IPVS operation.
    trim(collect=False)
    gc.freeze()  # the model's objects: never written to by the children's collections
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        rc = 2
        if wait:
            os.close(ready_r)
        try:
            rc = checker_main(args, holder, False, log_fd=log_fd, parent=parent,
                              ready_fd=ready_w)
        except Exception as e:
            import logging

            logging.getLogger("director").error("Healthcheck child: internal error %s: %s",
                                                type(e).__name__, e)
        finally:
            if "logging" in sys.modules:
                sys.modules["logging"].shutdown()
            os._exit(rc)
    started = time.monotonic()
    if wait:
        import select

        os.close(ready_w)
        select.select([ready_r], [], [], READY_WAIT)
        os.close(ready_r)
    return Forked(pid, started, log_fd)


def checker_main(args: argparse.Namespace, box: list[Config], adopt: bool,
                 log_fd: int | None = None, parent: int | None = None,
                 ready_fd: int = -1) -> int:
    """The checker child: the first programming (when it is all a start does), then
    logging, process settings and the event loop. `parent`: forked by fork_checker
    (this sets up logging and the parent-death signal; the watchdog's spawn did both
    otherwise). `box`: the config, taken out (see fork_checker). `ready_fd`: closed once
    the first programming is done, the parent's cue to go on (fork_checker)."""
    from .first_ipvs import program

    first = program(box[0], adopt, args.dry_run)
    if ready_fd >= 0:  # the parent's start-up goes on (fork_checker)
        os.close(ready_fd)
    if parent is not None:
        from daemonlib.libc import die_with_parent

        from .cli import setup_logging

        die_with_parent()
        if os.getppid() != parent:  # the parent died before prctl: stop, cleanly
            os.kill(os.getpid(), signal.SIGTERM)  # (blocked: the loop's handler takes it)
        setup_logging(args, log_fd=log_fd)
    import asyncio

    from daemonlib import sched

    from .lvs_main import run

    g = box[0].global_defs
    sched.apply("Healthcheck", g.checker_priority, g.checker_rt_priority,
                g.checker_rlimit_rttime, g.checker_no_swap, g.checker_cpu_affinity)
    del g
    with asyncio.Runner() as runner:
        return runner.run(run(args, box.pop(), adopt=adopt, first=first))
