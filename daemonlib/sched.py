"""A child's process settings from global_defs, as keepalived applies them at start:
`*_priority` (nice), `*_rt_priority` (SCHED_RR, reset on fork, with an RLIMIT_RTTIME),
`*_no_swap` (mlockall) and `*_cpu_affinity`. A refusal by the kernel is logged with what
was being done and the child runs on, as keepalived's does."""

from __future__ import annotations

import ctypes
import logging
import os
import resource
from collections.abc import Sequence

from .libc import libc

log = logging.getLogger("director")

_MCL_CURRENT, _MCL_FUTURE, _MCL_ONFAULT = 1, 2, 4
_SCHED_RESET_ON_FORK = 0x40000000


def apply(process: str, nice: int | None, rt_priority: int | None, rlimit_rttime: int | None,
          no_swap: bool, cpus: Sequence[int]) -> None:
    if nice is not None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        except OSError as e:
            log.info("%s child: unable to set process priority to %d - %s", process, nice,
                     e.strerror)
    if rt_priority:
        try:
            os.sched_setscheduler(0, os.SCHED_RR | _SCHED_RESET_ON_FORK,
                                  os.sched_param(rt_priority))
        except OSError as e:
            log.warning("%s child: cannot set realtime priority %d - %s", process, rt_priority,
                        e.strerror)
        else:
            limit = rlimit_rttime or 10000  # keepalived's default, in microseconds
            try:  # the soft limit at half, as keepalived, to be warned (SIGXCPU) first
                resource.setrlimit(resource.RLIMIT_RTTIME, (limit // 2, limit))
            except (OSError, ValueError) as e:
                log.warning("%s child: cannot set realtime rlimit %d - %s", process, limit, e)
    if no_swap:
        if libc().mlockall(_MCL_CURRENT | _MCL_FUTURE | _MCL_ONFAULT) != 0:
            log.info("%s child: unable to lock process in memory - %s", process,
                     os.strerror(ctypes.get_errno()))
    if cpus:
        try:
            os.sched_setaffinity(0, cpus)
        except OSError as e:
            log.warning("%s child: cannot set CPU affinity %s - %s", process,
                        ",".join(map(str, cpus)), e.strerror)
