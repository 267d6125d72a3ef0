"""When a MASTER sends its gratuitous ARPs / unsolicited NAs: a pure schedule.

At the transition to MASTER keepalived arms separate timers: a round of
`garp_master_repeat` at once, a second one `garp_master_delay` later (none when the
delay is 0), and a refresh timer due every `garp_master_refresh` from the transition,
each refresh round `garp_master_refresh_repeat` long. Measured on the installed
keepalived 2.2.7 (delay 2, refresh 1: refreshes at +1.0, +2.0, +3.0 s, the delay round
at +2.0 beside the second); the 2.4 source (vrrp_state_become_master) has since moved
the first refresh to delay + refresh: `Timing.refresh_after_delay` gives that.
The timers run from the transition, not from the end of the previous round: a round
that takes time (garp_interval) or a loop that was busy does not push the next one
later, and a loop that missed several refresh slots sends one round for the latest,
not a burst.
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
    refresh_after_delay: bool = False  # keepalived 2.4's first refresh (see above)


@attrs.frozen
class Round:
    kind: str
    at: float  # loop time it is due
    repeat: int
    n: int = 0  # the refresh's number (1, 2, ...)


def next_round(t: Timing, since: float, last: Round | None, now: float) -> Round | None:
    """The round after `last` (None: the first) for a MASTER since `since`, or None
    when there is no further one; `now` collapses missed refresh slots into one."""
    delay_at = since + t.delay if t.delay > 0 else None
    if last is None:
        return Round(MASTER, since, t.repeat)
    refresh: Round | None = None
    if t.refresh > 0:
        base = since + (t.delay if t.refresh_after_delay else 0.0)
        behind = math.floor((now - base) / t.refresh)  # the latest slot already due
        n = max(last.n + 1, behind)
        refresh = Round(REFRESH, base + n * t.refresh, t.refresh_repeat, n)
    # the delay round comes once, in its place among the refreshes (first on a tie)
    if delay_at is not None and last.kind != DELAY and last.at < delay_at \
            and (refresh is None or delay_at <= refresh.at):
        return Round(DELAY, delay_at, t.repeat, last.n)
    return refresh
