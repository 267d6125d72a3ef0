"""One asyncio engine for every checker of the process.

Each checker is a `Job` with its next due time on the loop's clock, in one heap with the
deadlines of the TCP connects in flight; one loop timer, armed for the heap's head, runs
everything due (at most `TICK` late, so that thousands of checks a second share wake-ups).
No task, timer handle or closure per check: TCP_CHECK, the common one, is a socket in
the shared epoll set (poller.py) and a heap entry; the other kinds are futures. The next
due time is counted from the scheduled start, not from when the check ended, so checks
do not drift. The first checks are spread over `warmup` (random, as keepalived) or,
without warmup, evenly over the first second so that thousands of checkers do not start
in one burst.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import heapq
import itertools
import logging
import random
import socket
from collections.abc import Callable
from typing import TypeVar

import attrs

from conf.model import Checker, Config, RealServer, VirtualServer

from .http import HttpCheck
from .poller import OUT, poller
from .probes import Outcome, file_probe, probe, tcp_open, tcp_result
from .state import RetryState

_T = TypeVar("_T")
log = logging.getLogger("director.checkers")

Key = tuple[int, int, int]  # virtual server, real server, checker
HISTORY_TOP = 1 << 30  # results kept for the status page's sparkline: 30
TICK = 0.002  # seconds: the scheduler's granularity
TIMEOUT = Outcome(False, "timeout")


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
    running: asyncio.Future[Outcome] | HttpCheck | None = None
    http: HttpCheck | None = None  # HTTP_GET/SSL_GET: made at the first check, then reused
    sock: socket.socket | None = None  # TCP_CHECK's connect in flight
    deadline: float = 0.0  # ... and when it times out
    last_reason: str = ""
    checks: int = 0
    history: int = 1  # recent results as bits after a leading 1 (one int: 10k jobs)


class Engine:
    def __init__(self, on_change: Callable[[Key, bool], None],
                 on_weight: Callable[[Key, int], None],
                 log_all_failures: bool = False, lateness: int = 0) -> None:
        """`lateness`: keep the last N checks' lateness (a benchmark's figure; the
        daemon keeps none: 200,000 floats are 6 MiB)."""
        self.on_change = on_change
        self.on_weight = on_weight
        self.log_all_failures = log_all_failures
        self.jobs: list[Job] = []
        self.lateness: collections.deque[float] | None = (
            collections.deque(maxlen=lateness) if lateness else None)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.heap: list[tuple[float, int, Job]] = []  # (when, tie-break, job)
        self.seq = itertools.count()
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        self.ticking = False
        self.stopped = False

    def add(self, job: Job) -> None:
        self.jobs.append(job)

    def start(self) -> None:
        self.loop = loop = asyncio.get_running_loop()
        self.poller = poller()
        self.stopped = False
        now = loop.time()
        n = len(self.jobs)
        for i, job in enumerate(self.jobs):
            warmup = job.checker.warmup or 0.0
            first = random.uniform(0, warmup) if warmup else (i / n) * min(
                1.0, job.state.delay_loop)
            job.due = now + first
            self._push(job.due, job)

    def stop(self) -> None:
        self.stopped = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.heap.clear()
        for job in self.jobs:
            if job.running is not None:
                job.running.cancel()
                job.running = None
            if job.sock is not None:
                self.poller.forget(job.sock.fileno())
                job.sock.close()
                job.sock = None

    # -- the heap --------------------------------------------------------------------
    def _push(self, when: float, job: Job) -> None:
        heapq.heappush(self.heap, (when, next(self.seq), job))
        if self.ticking:
            return  # _tick arms the timer for the head when it is done
        if self.timer is None or when < self.timer_at - TICK:
            self._arm(when)

    def _arm(self, when: float) -> None:
        assert self.loop is not None
        if self.timer is not None:
            self.timer.cancel()
        self.timer_at = when
        self.timer = self.loop.call_at(when, self._tick)

    def _tick(self) -> None:
        assert self.loop is not None
        self.timer = None
        heap = self.heap
        now = self.loop.time()
        self.ticking = True
        try:
            while heap and heap[0][0] <= now and not self.stopped:
                when, _, job = heapq.heappop(heap)
                if job.sock is not None:
                    if when == job.deadline:  # else a stale entry: the connect ended
                        self._tcp_timeout(job)
                elif job.running is None:
                    if when == job.due:
                        self._run(job, now)
                elif when == job.deadline and job.running is job.http:
                    job.http.expire()
        finally:
            self.ticking = False
        if heap and not self.stopped:
            self._arm(max(heap[0][0], now + TICK))

    # -- one check -------------------------------------------------------------------
    def _run(self, job: Job, now: float) -> None:
        if self.lateness is not None:
            self.lateness.append(now - job.due)
        job.checks += 1
        ck = job.checker
        if ck.type == "TCP_CHECK":
            s, outcome = tcp_open(ck)
            if s is None:
                assert outcome is not None
                self._done(job, outcome)
                return
            job.sock = s
            job.deadline = now + job.timeout
            self.poller.watch(s.fileno(), OUT, self._tcp_ready, job)
            self._push(job.deadline, job)
            return
        if ck.type in ("HTTP_GET", "SSL_GET"):
            check = job.http
            if check is None:
                check = job.http = HttpCheck(ck, job.timeout, self._http_done, job,
                                             self._deadline)
            job.running = check
            check.start()
            return
        if job.file is not None:
            self._done(job, file_probe(ck, *job.file))
            return
        try:
            fut = asyncio.ensure_future(probe(ck, job.timeout))
        except (OSError, ValueError) as e:
            self._done(job, Outcome(False, str(e)))
            return
        job.running = fut
        fut.add_done_callback(functools.partial(self._finished, job))

    def _tcp_ready(self, job: Job, _events: int) -> None:
        s = job.sock
        assert s is not None
        job.sock = None
        self.poller.forget(s.fileno())
        self._done(job, tcp_result(s))

    def _deadline(self, job: Job, seconds: float) -> None:
        """HTTP: the GET starting now expires in `seconds` unless the check ends."""
        assert self.loop is not None
        job.deadline = self.loop.time() + seconds
        self._push(job.deadline, job)

    def _http_done(self, job: Job, outcome: Outcome) -> None:
        job.running = None
        self._done(job, outcome)

    def _tcp_timeout(self, job: Job) -> None:
        s = job.sock
        assert s is not None
        job.sock = None
        self.poller.forget(s.fileno())
        s.close()
        self._done(job, TIMEOUT)

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
        if self.stopped:
            return
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
        job.due = nxt if nxt > now else now
        self._push(job.due, job)

    def status(self) -> list[dict[str, object]]:
        return [job_status(j) for j in self.jobs]


def job_status(j: Job) -> dict[str, object]:
    """One checker as the status shows it."""
    return {"key": list(j.key), "type": j.checker.type, "service": j.service,
            "up": j.state.up, "checks": j.checks, "last_failure": j.last_reason,
            "history": bin(j.history)[3:]}


def build(cfg: Config, engine: Engine, initial: Callable[[Key], bool],
          label: Callable[[VirtualServer, RealServer], str]) -> None:
    """A job for every checker of every real server, starting from `initial` state;
    `label` names a real server in the log lines (the LVS side's own wording)."""
    files = {f.name: f for f in cfg.track_files}
    for vi, vs in enumerate(cfg.virtual_servers):
        for ri, rs in enumerate(vs.real_servers):
            for ci, ck in enumerate(rs.checkers):
                key = (vi, ri, ci)
                # conf resolved the effective values as keepalived does (0 stays 0)
                state = RetryState(retry=_given(ck.retry, 1),
                                   delay_loop=_given(ck.delay_loop, vs.delay_loop),
                                   delay_before_retry=_given(ck.delay_before_retry, 1.0),
                                   up=initial(key))
                file = None
                if ck.type == "FILE_CHECK":
                    spec = files.get(ck.track_file or "")
                    weight = ck.weight if ck.weight is not None else (
                        spec.weight if spec else 1)
                    file = (spec.file if spec else None, weight, ck.weight_reverse,
                            rs.weight)
                engine.add(Job(key, ck, label(vs, rs), state,
                               timeout=_given(ck.connect_timeout, 5.0), file=file))


def _given(value: _T | None, default: _T) -> _T:
    """The model's effective value; the default only for a Checker built by hand."""
    return default if value is None else value
