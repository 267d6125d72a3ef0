"""When a MASTER sends its gratuitous ARPs / unsolicited NAs: a pure schedule.

keepalived (vrrp.c, vrrp_state_become_master; vrrp_scheduler.c) arms three timers at
the transition: a round of `garp_master_repeat` at once, a second one `garp_master_delay`
later (none when the delay is 0), and a refresh timer first due at
`garp_master_delay + garp_master_refresh`, then every `garp_master_refresh`, each round
`garp_master_refresh_repeat` long. The timers run from the transition, not from the end
of the previous round: a round that takes time (garp_interval) or a loop that was busy
does not push the next one later. A loop that missed several refresh slots sends one
round for the latest, not a burst.
"""

from __future__ import annotations

import math

import attrs

MASTER, DELAY, REFRESH = "master", "delay", "refresh"


@attrs.frozen
class Timing:
    delay: float = 5.0
    repeat: int = 5
    refresh: float = 0.0
    refresh_repeat: int = 1


@attrs.frozen
class Round:
    kind: str
    at: float  # loop time it is due
    repeat: int
    n: int = 0  # the refresh's number (1, 2, ...)


def next_round(t: Timing, since: float, last: Round | None, now: float) -> Round | None:
    """The round after `last` (None: the first) for a MASTER since `since`, or None
    when there is no further one; `now` collapses missed refresh slots into one."""
    if last is None:
        return Round(MASTER, since, t.repeat)
    if last.kind == MASTER and t.delay > 0:
        return Round(DELAY, since + t.delay, t.repeat)
    if t.refresh <= 0:
        return None
    base = since + t.delay
    n = last.n + 1
    behind = math.floor((now - base) / t.refresh)  # the latest slot already due
    n = max(n, behind)
    return Round(REFRESH, base + n * t.refresh, t.refresh_repeat, n)
