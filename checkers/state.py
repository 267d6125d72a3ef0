"""The retry logic of one checker, keepalived's way. Pure.

Every `delay_loop` a check runs. A failure is retried up to `retry` times, spaced by
`delay_before_retry`; only when the last retry fails too does the checker go down (and
that is logged once, with the reason). One success brings a down checker back up.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Step:
    delay: float  # seconds until the next check
    changed: bool  # the checker's up/down state changed with this result
    up: bool
    retrying: bool = False


_STEADY: dict[float, Step] = {}  # delay_loop -> the step of a success while up


@attrs.define
class RetryState:
    retry: int
    delay_loop: float
    delay_before_retry: float
    up: bool = True
    failures: int = 0  # consecutive failed attempts in the current round

    def result(self, ok: bool) -> Step:
        if ok:
            if self.up and not self.failures:  # by far the most common: a shared Step
                steady = _STEADY.get(self.delay_loop)
                if steady is None:
                    steady = _STEADY[self.delay_loop] = Step(self.delay_loop, False, True)
                return steady
            changed = not self.up
            self.up, self.failures = True, 0
            return Step(self.delay_loop, changed, True)
        self.failures += 1
        if self.failures <= self.retry and self.up:
            return Step(self.delay_before_retry, False, True, retrying=True)
        changed = self.up
        self.up, self.failures = False, 0
        return Step(self.delay_loop, changed, False)
