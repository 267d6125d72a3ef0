"""The VRRP state machine of one instance (RFC 3768 / 5798, with keepalived's
choices). Pure: events in, actions out, time passed in; `deadline` says when
`tick` must be called next. No sockets, no clock.

Rules:
- Master_Down_Interval = 3 x Advert_Interval + Skew_Time; v2 skew (256 - p) / 256 s,
  v3 skew (256 - p) x Master_Adver_Interval / 256; a v3 backup adopts the master's
  advertised interval;
- priority 255 (address owner) goes MASTER at start; a `state MASTER` instance starts
  BACKUP and listens for one advert interval only before taking over (keepalived's
  quick start); anything else waits the full Master_Down_Interval;
- a BACKUP takes over at Master_Down; a priority 0 advert shortens the wait to the
  skew time; with preemption a lower-priority advert does not reset the timer (after
  `preempt_delay` from start), with `nopreempt` every advert does;
- a MASTER yields to a higher priority, or to an equal priority from a higher
  primary address; on a priority 0 advert it answers at once;
- effective priority = base + tracker weights, clamped to 1..254 (255 stays 255);
- FAULT drops everything until cleared, then BACKUP; stop sends priority 0.
"""

from __future__ import annotations

import ipaddress

import attrs

INIT, BACKUP, MASTER, FAULT = "INIT", "BACKUP", "MASTER", "FAULT"


@attrs.frozen
class Action:
    """`send` (an advert with `priority`), or a state change `to` a state."""

    kind: str  # "send" | "state"
    priority: int = 0
    to: str = ""
    reason: str = ""


def effective_priority(base: int, weights: int) -> int:
    if base == 255:
        return 255
    return max(1, min(254, base + weights))


def _ip_key(address: str) -> int:
    return int(ipaddress.ip_address(address))


@attrs.define
class Instance:
    name: str
    version: int
    priority: int  # effective
    advert_int: float  # seconds (v3: centisecond resolution)
    primary_ip: str
    nopreempt: bool = False
    preempt_delay: float = 0.0
    want_master: bool = False  # `state MASTER`
    state: str = INIT
    deadline: float | None = None
    master_adver_int: float = 0.0
    started_at: float = 0.0
    held: bool = False  # `director ctl handover`: BACKUP until takeover or release

    # -- timing ------------------------------------------------------------------
    def skew(self) -> float:
        if self.version == 3:
            return ((256 - self.priority) * self.master_adver_int) / 256
        return (256 - self.priority) / 256

    def master_down_interval(self) -> float:
        return 3 * self.master_adver_int + self.skew()

    # -- events ------------------------------------------------------------------
    def start(self, now: float) -> list[Action]:
        self.started_at = now
        self.master_adver_int = self.advert_int
        if self.priority == 255 and not self.held:
            return self._to_master(now, "address owner")
        self.state = BACKUP
        wait = self.advert_int if self.want_master else self.master_down_interval()
        self.deadline = now + wait
        return [Action("state", to=BACKUP, reason="start")]

    def tick(self, now: float) -> list[Action]:
        if self.deadline is None or now < self.deadline:
            return []
        if self.state == BACKUP and self.held:  # handed over: let the peer be master
            self.deadline = now + self.master_down_interval()
            return []
        if self.state == BACKUP:
            return self._to_master(now, "master down")
        if self.state == MASTER:
            self.deadline = now + self.advert_int
            return [Action("send", priority=self.priority)]
        return []

    def advert(self, now: float, priority: int, src: str, interval: float) -> list[Action]:
        """A valid advert for our VRID from `src` (checks done by the receive path)."""
        if self.state == BACKUP:
            if priority == 0:
                self.deadline = now + self.skew()
                return []
            if self.version == 3:
                self.master_adver_int = interval
            preempting = not self.nopreempt and now >= self.started_at + self.preempt_delay
            if not preempting or priority >= self.priority:
                self.deadline = now + self.master_down_interval()
            return []
        if self.state == MASTER:
            if priority == 0:
                self.deadline = now + self.advert_int
                return [Action("send", priority=self.priority)]
            higher = priority > self.priority or (
                priority == self.priority and _ip_key(src) > _ip_key(self.primary_ip))
            if higher:
                if self.version == 3:
                    self.master_adver_int = interval
                self.state = BACKUP
                self.deadline = now + self.master_down_interval()
                return [Action("state", to=BACKUP, reason=f"higher priority advert from {src}")]
        return []

    def set_priority(self, now: float, priority: int) -> list[Action]:
        """Trackers changed the effective priority; a master tells the others at once."""
        if priority == self.priority:
            return []
        self.priority = priority
        if self.state == MASTER:
            self.deadline = now + self.advert_int
            return [Action("send", priority=priority)]
        return []

    def fault(self, now: float, faulty: bool) -> list[Action]:
        if faulty and self.state != FAULT:
            self.state = FAULT
            self.deadline = None
            return [Action("state", to=FAULT, reason="fault")]
        if not faulty and self.state == FAULT:
            self.state = BACKUP
            self.master_adver_int = self.advert_int
            self.deadline = now + self.master_down_interval()
            return [Action("state", to=BACKUP, reason="fault cleared")]
        return []

    def resume(self, now: float) -> list[Action]:
        """Carry on as MASTER (a reload, or a restarted process that finds its VIPs in
        place): advertise at once, before the backups' Master_Down runs out."""
        self.started_at = now
        self.master_adver_int = self.advert_int
        self.state = MASTER
        self.deadline = now + self.advert_int
        return [Action("send", priority=self.priority)]

    def force(self, now: float, state: str, reason: str) -> list[Action]:
        """A sync group moves this member with the others (MASTER or BACKUP)."""
        if state == self.state or self.state in (FAULT, INIT) or (state == MASTER and self.held):
            return []
        if state == MASTER:
            return self._to_master(now, reason)
        self.state = BACKUP
        self.deadline = now + self.master_down_interval()
        return [Action("state", to=BACKUP, reason=reason)]

    def handover(self, now: float) -> list[Action]:
        """Give up MASTER as at stop (a priority 0 advert: the backup takes over after
        its skew time), but keep running, held in BACKUP."""
        self.held = True
        if self.state != MASTER:
            return []
        self.state = BACKUP
        self.deadline = now + self.master_down_interval()
        return [Action("send", priority=0), Action("state", to=BACKUP, reason="handover")]

    def release(self, now: float, takeover: bool) -> list[Action]:
        """The hold ends; `takeover`: become MASTER at once (an election follows if a
        higher priority is out there)."""
        self.held = False
        if takeover and self.state == BACKUP:
            return self._to_master(now, "takeover")
        return []

    def stop(self, now: float) -> list[Action]:
        actions = [Action("send", priority=0)] if self.state == MASTER else []
        self.state = INIT
        self.deadline = None
        return actions + [Action("state", to=INIT, reason="stop")]

    def _to_master(self, now: float, reason: str) -> list[Action]:
        self.state = MASTER
        self.deadline = now + self.advert_int
        return [Action("state", to=MASTER, reason=reason),
                Action("send", priority=self.priority)]
