"""One asyncio engine for every checker of the process.

Each checker is a `Job` with its next due time on the loop's clock; a due job is started
by a `call_at` timer (no task sleeping per checker), and the next due time is counted
from the scheduled start, not from when the check ended, so checks do not drift. The
first checks are spread over `warmup` (random, as keepalived) or, without warmup, evenly
over the first second so that thousands of checkers do not start in one burst.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
from collections.abc import Callable

import attrs

from conf.model import Checker, Config, RealServer, VirtualServer

from .probes import Outcome, file_probe, probe
from .state import RetryState

log = logging.getLogger("director.checkers")

Key = tuple[int, int, int]  # virtual server, real server, checker
HISTORY_TOP = 1 << 30  # results kept for the status page's sparkline: 30


@attrs.define(eq=False)
class Job:
    key: Key
    checker: Checker
    service: str  # keepalived's name of the real server, "[ip]:tcp:port"
    state: RetryState
    timeout: float
    file: tuple[str | None, int, bool, int] | None = None  # FILE_CHECK: path, w, rev, base
    due: float = 0.0
    weight: int | None = None
    handle: asyncio.TimerHandle | None = None
    running: asyncio.Future[Outcome] | None = None
    last_reason: str = ""
    checks: int = 0
    history: int = 1  # recent results as bits after a leading 1 (one int: 10k jobs)


class Engine:
    def __init__(self, on_change: Callable[[Key, bool], None],
                 on_weight: Callable[[Key, int], None],
                 log_all_failures: bool = False) -> None:
        self.on_change = on_change
        self.on_weight = on_weight
        self.log_all_failures = log_all_failures
        self.jobs: list[Job] = []
        self.lateness: collections.deque[float] = collections.deque(maxlen=200_000)
        self.loop: asyncio.AbstractEventLoop | None = None

    def add(self, job: Job) -> None:
        self.jobs.append(job)

    def start(self) -> None:
        self.loop = loop = asyncio.get_running_loop()
        now = loop.time()
        n = len(self.jobs)
        for i, job in enumerate(self.jobs):
            warmup = job.checker.warmup or 0.0
            first = random.uniform(0, warmup) if warmup else (i / n) * min(
                1.0, job.state.delay_loop)
            self._schedule(job, now + first)

    def stop(self) -> None:
        for job in self.jobs:
            if job.handle:
                job.handle.cancel()
            if job.running is not None and not job.running.done():
                job.running.cancel()

    def _schedule(self, job: Job, when: float) -> None:
        assert self.loop is not None
        job.due = when
        job.handle = self.loop.call_at(when, self._run, job)

    def _run(self, job: Job) -> None:
        assert self.loop is not None
        job.handle = None
        self.lateness.append(self.loop.time() - job.due)
        job.checks += 1
        if job.file is not None:
            self._done(job, file_probe(job.checker, *job.file))
            return
        try:
            fut = asyncio.ensure_future(probe(job.checker, job.timeout))
        except (OSError, ValueError) as e:
            self._done(job, Outcome(False, str(e)))
            return
        job.running = fut
        fut.add_done_callback(lambda f: self._finished(job, f))

    def _finished(self, job: Job, fut: asyncio.Future[Outcome]) -> None:
        job.running = None
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None and not isinstance(exc, (OSError, TimeoutError, ValueError)):
            log.error("%s on service %s: internal error %s: %s", job.checker.type,
                      job.service, type(exc).__name__, exc)
        self._done(job, fut.result() if exc is None
                   else Outcome(False, f"{type(exc).__name__}: {exc}"))

    def _done(self, job: Job, outcome: Outcome) -> None:
        assert self.loop is not None
        ck = job.checker
        step = job.state.result(outcome.ok)
        h = (job.history << 1) | outcome.ok
        job.history = h if h < HISTORY_TOP << 1 else (h & (HISTORY_TOP - 1)) | HISTORY_TOP
        if not outcome.ok:
            job.last_reason = outcome.reason
            if self.log_all_failures or ck.log_all_failures:
                log.info("%s on service %s failed: %s", ck.type, job.service, outcome.reason)
            elif step.retrying:
                log.debug("%s on service %s failed (%s), retry %d/%d", ck.type, job.service,
                          outcome.reason, job.state.failures, job.state.retry)
        if step.changed:
            if step.up:
                log.info("%s on service %s success.", ck.type, job.service)
            else:
                log.info("%s on service %s failed after %d retries: %s.", ck.type,
                         job.service, job.state.retry, outcome.reason)
            self.on_change(job.key, step.up)
        if outcome.ok and outcome.weight is not None and outcome.weight != job.weight:
            job.weight = outcome.weight
            self.on_weight(job.key, outcome.weight)
        now = self.loop.time()
        nxt = job.due + step.delay
        self._schedule(job, nxt if nxt > now else now)

    def status(self) -> list[dict[str, object]]:
        return [{"key": list(j.key), "type": j.checker.type, "service": j.service,
                 "up": j.state.up, "checks": j.checks, "last_failure": j.last_reason,
                 "history": bin(j.history)[3:]}
                for j in self.jobs]


def build(cfg: Config, engine: Engine, initial: Callable[[Key], bool],
          label: Callable[[VirtualServer, RealServer], str]) -> None:
    """A job for every checker of every real server, starting from `initial` state;
    `label` names a real server in the log lines (the LVS side's own wording)."""
    files = {f.name: f for f in cfg.track_files}
    for vi, vs in enumerate(cfg.virtual_servers):
        for ri, rs in enumerate(vs.real_servers):
            for ci, ck in enumerate(rs.checkers):
                key = (vi, ri, ci)
                state = RetryState(retry=ck.retry if ck.retry is not None else 1,
                                   delay_loop=ck.delay_loop or vs.delay_loop or 60.0,
                                   delay_before_retry=ck.delay_before_retry or 1.0,
                                   up=initial(key))
                file = None
                if ck.type == "FILE_CHECK":
                    spec = files.get(ck.track_file or "")
                    weight = ck.weight if ck.weight is not None else (
                        spec.weight if spec else 1)
                    file = (spec.file if spec else None, weight, ck.weight_reverse,
                            rs.weight)
                engine.add(Job(key, ck, label(vs, rs), state,
                               timeout=ck.connect_timeout or 5.0, file=file))
