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
  primary address (keepalived's `vrrp_state_master_rx`); it answers a lower priority (or
  an equal one from a lower address) with an advert of its own at once, forcing a new
  election, unless `lower_prio_no_advert`; on a priority 0 advert it answers at once;
  with `higher_prio_send_advert` it also answers the higher one before yielding;
- a member of a sync group whose Master_Down expires only *wants* MASTER
  (`WantMaster`): the group (vrrp/syncgroup.py) moves it when every member wants it,
  so that the group prefers BACKUP to thrashing (keepalived's vrrp_sync_can_goto_master);
- effective priority = base + tracker weights, clamped to 1..254 (255 stays 255);
- FAULT drops everything until cleared, then BACKUP; stop sends priority 0.
"""

from __future__ import annotations

import ipaddress

import attrs

INIT, BACKUP, MASTER, FAULT = "INIT", "BACKUP", "MASTER", "FAULT"


@attrs.frozen
class Send:
    """Send an advert with `priority`."""

    priority: int


@attrs.frozen
class Enter:
    """The instance entered `to` (INIT, BACKUP, MASTER, FAULT)."""

    to: str
    reason: str = ""


@attrs.frozen
class Notice:
    """A line for the log that only the state machine can word (keepalived's)."""

    message: str


@attrs.frozen
class LowerAdvert:
    """A MASTER heard a lower-priority master (split brain healing): the hook for
    keepalived's notify_master_rx_lower_pri and garp_lower_prio_*."""

    src: str
    priority: int


@attrs.frozen
class WantMaster:
    """A sync group member's Master_Down ran out; it stays BACKUP until its group says."""

    reason: str


Action = Send | Enter | Notice | LowerAdvert | WantMaster


def effective_priority(base: int, weights: int) -> int:
    if base == 255:
        return 255
    return max(1, min(254, base + weights))


def _ip_key(address: str) -> int:
    return int(ipaddress.ip_address(address))


def addr_cmp(src: str, ours: str) -> int:
    """-1, 0, 1 as the advert's source address is below, equal to, above ours."""
    a, b = _ip_key(src), _ip_key(ours)
    return (a > b) - (a < b)


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
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False
    sync: bool = False  # a sync group member: WantMaster instead of MASTER at Master_Down
    wants: str = ""  # a sync member's wish (MASTER once its Master_Down ran out)
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
        return [Enter(BACKUP, reason="start")]

    def tick(self, now: float) -> list[Action]:
        if self.deadline is None or now < self.deadline:
            return []
        if self.state == BACKUP and self.held:  # handed over: let the peer be master
            self.deadline = now + self.master_down_interval()
            return []
        if self.state == BACKUP:
            if self.sync:
                self.wants = MASTER
                self.deadline = now + self.master_down_interval()
                return [WantMaster("master down")]
            return self._to_master(now, "master down")
        if self.state == MASTER:
            self.deadline = now + self.advert_int
            return [Send(self.priority)]
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
                self.wants = ""
            return []
        if self.state == MASTER:
            return self._master_rx(now, priority, src, interval)
        return []

    def _master_rx(self, now: float, priority: int, src: str, interval: float) -> list[Action]:
        ours = self.priority
        cmp = addr_cmp(src, self.primary_ip)
        higher = priority > ours or (priority == ours and cmp > 0)
        if priority == 0:
            self.deadline = now + self.advert_int
            return [Send(ours)]
        out: list[Action] = []
        if higher and self.higher_prio_send_advert:
            out.append(Send(ours))
        if priority == ours and cmp == 0:
            return [Notice("WARNING - equal priority advert received from remote host "
                           "with our IP address.")]
        if not higher:
            election = "" if self.lower_prio_no_advert else ", forcing new election"
            out.append(Notice(f"Received advert from {src} with lower priority {priority}, "
                              f"ours {ours}{election}"))
            if not self.lower_prio_no_advert:
                out.append(Send(ours))
            out.append(LowerAdvert(src, priority))
            return out
        if priority > ours:
            out.append(Notice(f"Master received advert from {src} with higher priority "
                              f"{priority}, ours {ours}"))
        else:
            out.append(Notice(f"Master received advert from {src} with same priority "
                              f"{priority} but higher IP address than ours"))
        if self.version == 3:
            self.master_adver_int = interval
        self.state = BACKUP
        self.wants = ""
        self.deadline = now + self.master_down_interval()
        out.append(Enter(BACKUP, reason=f"higher priority advert from {src}"))
        return out

    def set_priority(self, now: float, priority: int) -> list[Action]:
        """Trackers changed the effective priority; a master tells the others at once."""
        if priority == self.priority:
            return []
        self.priority = priority
        if self.state == MASTER:
            self.deadline = now + self.advert_int
            return [Send(priority)]
        return []

    def fault(self, now: float, faulty: bool) -> list[Action]:
        if faulty and self.state != FAULT:
            self.state = FAULT
            self.wants = ""
            self.deadline = None
            return [Enter(FAULT, reason="fault")]
        if not faulty and self.state == FAULT:
            self.state = BACKUP
            self.master_adver_int = self.advert_int
            self.deadline = now + self.master_down_interval()
            return [Enter(BACKUP, reason="fault cleared")]
        return []

    def resume(self, now: float) -> list[Action]:
        """Carry on as MASTER (a reload, or a restarted process that finds its VIPs in
        place): advertise at once, before the backups' Master_Down runs out."""
        self.started_at = now
        self.master_adver_int = self.advert_int
        self.state = MASTER
        self.deadline = now + self.advert_int
        return [Send(self.priority)]

    def force(self, now: float, state: str, reason: str) -> list[Action]:
        """A sync group moves this member with the others (MASTER or BACKUP)."""
        if state == self.state or self.state in (FAULT, INIT) or (state == MASTER and self.held):
            return []
        if state == MASTER:
            return self._to_master(now, reason)
        self.state = BACKUP
        self.wants = ""
        self.deadline = now + self.master_down_interval()
        return [Enter(BACKUP, reason=reason)]

    def handover(self, now: float) -> list[Action]:
        """Give up MASTER as at stop (a priority 0 advert: the backup takes over after
        its skew time), but keep running, held in BACKUP."""
        self.held = True
        if self.state != MASTER:
            return []
        self.state = BACKUP
        self.deadline = now + self.master_down_interval()
        self.wants = ""
        return [Send(0), Enter(BACKUP, reason="handover")]

    def release(self, now: float, takeover: bool) -> list[Action]:
        """The hold ends; `takeover`: become MASTER at once (an election follows if a
        higher priority is out there)."""
        self.held = False
        if takeover and self.state == BACKUP:
            return self._to_master(now, "takeover")
        return []

    def stop(self, now: float) -> list[Action]:
        actions: list[Action] = [Send(0)] if self.state == MASTER else []
        self.state = INIT
        self.wants = ""
        self.deadline = None
        return actions + [Enter(INIT, reason="stop")]

    def _to_master(self, now: float, reason: str) -> list[Action]:
        self.state = MASTER
        self.wants = ""
        self.deadline = now + self.advert_int
        return [Enter(MASTER, reason=reason), Send(self.priority)]
